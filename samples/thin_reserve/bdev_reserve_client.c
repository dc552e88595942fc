// SPDX-License-Identifier: GPL-2.0
/*
 * A test client for the block reservation operations: lets root call
 * bdev_get_reserved_space(), bdev_set_reserved_space() and bdev_provision()
 * on a named block device from the shell, so the interface can be tested
 * without a filesystem.
 *
 *   echo "set /dev/mapper/vg-thin 2048" > /sys/kernel/debug/bdev_reserve_client/command
 *   echo "get /dev/mapper/vg-thin"      > /sys/kernel/debug/bdev_reserve_client/command
 *   cat /sys/kernel/debug/bdev_reserve_client/command      -> "2048"
 *   echo "provision|overwrite|pin DEV START LEN" > .../command
 *   echo "granularity /dev/mapper/vg-thin" > .../command   (the unit)
 *
 * Every operation but get and granularity opens the device exclusively, as
 * a holder must: while a filesystem is mounted there they fail with EBUSY.
 *
 * A failed call fails the write with its errno; a successful get or
 * provision leaves its number (reserved sectors, newly mapped sectors) to
 * be read back. All sizes are in 512-byte sectors.
 *
 * Written in C because 6.12's Rust crate has no debugfs, miscdevice or
 * module-parameter abstractions yet; the policy it exercises is Rust.
 */
#include <linux/blkdev.h>
#include <linux/capability.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#define CMD_MAX 256

static struct dentry *client_dir;
static DEFINE_MUTEX(client_mutex);
static u64 client_last_value;
/* The client's claim on a device while it changes its reservation. */
static int client_holder;

static int client_run(char *cmd)
{
	char *op, *path, *arg1, *arg2;
	struct file *bdev_file;
	struct block_device *bdev;
	u64 a = 0, b = 0;
	sector_t value = 0, ignored;
	bool reading;
	int r;

	op = strsep(&cmd, " ");
	path = strsep(&cmd, " ");
	arg1 = strsep(&cmd, " ");
	arg2 = strsep(&cmd, " ");
	if (!op || !path || !*path || cmd)
		return -EINVAL;
	if (arg1 && kstrtou64(arg1, 0, &a))
		return -EINVAL;
	if (arg2 && kstrtou64(arg2, 0, &b))
		return -EINVAL;

	/*
	 * Reading needs no claim. Changing the reservation or provisioning is
	 * for the device's exclusive holder only: open it exclusively, which
	 * fails with -EBUSY while a filesystem is mounted on it.
	 */
	reading = !strcmp(op, "get") || !strcmp(op, "granularity");
	bdev_file = bdev_file_open_by_path(path, BLK_OPEN_READ,
					   reading ? NULL : &client_holder,
					   NULL);
	if (IS_ERR(bdev_file))
		return PTR_ERR(bdev_file);
	bdev = file_bdev(bdev_file);

	if (!strcmp(op, "get") && !arg1)
		r = bdev_get_reserved_space(bdev, &value, NULL);
	else if (!strcmp(op, "granularity") && !arg1)
		r = bdev_get_reserved_space(bdev, &ignored, &value);
	else if (!strcmp(op, "set") && arg1 && !arg2)
		r = bdev_set_reserved_space(bdev, &client_holder, a);
	else if (!strcmp(op, "provision") && arg2)
		r = bdev_provision(bdev, &client_holder, a, b, 0, &value);
	else if (!strcmp(op, "overwrite") && arg2)
		r = bdev_provision(bdev, &client_holder, a, b,
				   BDEV_PROVISION_OVERWRITE |
				   BDEV_PROVISION_UNRESERVED, &value);
	else if (!strcmp(op, "pin") && arg2)
		r = bdev_provision(bdev, &client_holder, a, b,
				   BDEV_PROVISION_PIN, &value);
	else
		r = -EINVAL;

	fput(bdev_file);
	if (!r)
		client_last_value = value;
	return r;
}

static ssize_t client_write(struct file *file, const char __user *ubuf,
			    size_t count, loff_t *ppos)
{
	char *cmd;
	int r;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (count >= CMD_MAX)
		return -EINVAL;
	cmd = memdup_user_nul(ubuf, count);
	if (IS_ERR(cmd))
		return PTR_ERR(cmd);
	strim(cmd);

	mutex_lock(&client_mutex);
	r = client_run(cmd);
	mutex_unlock(&client_mutex);
	kfree(cmd);
	return r ? r : count;
}

static ssize_t client_read(struct file *file, char __user *ubuf, size_t count,
			   loff_t *ppos)
{
	char buf[24];
	int len;

	mutex_lock(&client_mutex);
	len = scnprintf(buf, sizeof(buf), "%llu\n", client_last_value);
	mutex_unlock(&client_mutex);
	return simple_read_from_buffer(ubuf, count, ppos, buf, len);
}

static const struct file_operations client_fops = {
	.owner = THIS_MODULE,
	.write = client_write,
	.read = client_read,
};

static int __init client_init(void)
{
	client_dir = debugfs_create_dir("bdev_reserve_client", NULL);
	debugfs_create_file("command", 0600, client_dir, NULL, &client_fops);
	return 0;
}

static void __exit client_exit(void)
{
	debugfs_remove_recursive(client_dir);
}

module_init(client_init);
module_exit(client_exit);
MODULE_DESCRIPTION("Shell access to block reservation operations, for tests");
MODULE_LICENSE("GPL");
