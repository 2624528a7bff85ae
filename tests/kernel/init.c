/* /init of the test initramfs: proves user space runs by printing a line and powering off.
 * On hosts without VT-x/AMD-V guest user space cannot make system calls (ENVIRONMENT.md): the
 * first syscall faults, the kernel kills init and panics, and with panic=-1 it reboots. The tests
 * accept either ending; what they check is that the kernel got as far as running /init. */
static long sys3(long n, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

void _start(void)
{
    static const char msg[] = "iovmm-init: user space runs\n";
    sys3(1 /* write */, 1, (long)msg, sizeof(msg) - 1);
    /* reboot(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_POWER_OFF) */
    sys3(169, (long)0xfee1dead, 672274793, 0x4321fedc);
    for (;;)
        ;
}
