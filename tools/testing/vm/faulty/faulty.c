// SPDX-License-Identifier: GPL-2.0
/*
 * A module that commits one deliberate bug at load time, chosen with the
 * "fault" parameter. scripts/harness-selftest.sh loads it in the debug VM to
 * prove that each kernel checker turns a test run red. Never load it
 * anywhere else.
 */
#include <linux/list.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

static char *fault = "none";
module_param(fault, charp, 0444);
MODULE_PARM_DESC(fault,
		 "sleep_in_atomic|lock_inversion|kasan_oob|leak|list_corruption");

static DEFINE_SPINLOCK(faulty_lock_a);
static DEFINE_SPINLOCK(faulty_lock_b);
static void *faulty_leak_sink;

/* Read through a pointer the compiler cannot reason about. */
static noinline char faulty_read(volatile char *p)
{
	return *p;
}

static int __init faulty_init(void)
{
	if (!strcmp(fault, "sleep_in_atomic")) {
		/*
		 * The bug the 2016 RFC warned of: an allocation that may sleep
		 * under a counter spinlock. DEBUG_ATOMIC_SLEEP catches it even
		 * when the allocation happens not to sleep.
		 */
		void *p;

		spin_lock(&faulty_lock_a);
		p = kmalloc(64, GFP_KERNEL);
		spin_unlock(&faulty_lock_a);
		kfree(p);
	} else if (!strcmp(fault, "lock_inversion")) {
		spin_lock(&faulty_lock_a);
		spin_lock(&faulty_lock_b);
		spin_unlock(&faulty_lock_b);
		spin_unlock(&faulty_lock_a);
		spin_lock(&faulty_lock_b);
		spin_lock(&faulty_lock_a);
		spin_unlock(&faulty_lock_a);
		spin_unlock(&faulty_lock_b);
	} else if (!strcmp(fault, "kasan_oob")) {
		char *buf = kmalloc(64, GFP_KERNEL);

		if (!buf)
			return -ENOMEM;
		pr_info("faulty: read past the end: %d\n", faulty_read(buf + 64));
		kfree(buf);
	} else if (!strcmp(fault, "leak")) {
		/* Store, then forget: nothing references the object any more. */
		faulty_leak_sink = kmalloc(128, GFP_KERNEL);
		faulty_leak_sink = NULL;
	} else if (!strcmp(fault, "list_corruption")) {
		LIST_HEAD(head);
		struct list_head entry;

		list_add(&entry, &head);
		list_del(&entry);
		list_del(&entry);
	} else if (strcmp(fault, "none")) {
		return -EINVAL;
	}
	pr_info("faulty: committed fault '%s'\n", fault);
	return 0;
}

static void __exit faulty_exit(void)
{
}

module_init(faulty_init);
module_exit(faulty_exit);
MODULE_DESCRIPTION("Deliberate kernel bugs for testing the test harness");
MODULE_LICENSE("GPL");
