/* For tests/test_attach.py::test_vector_registers_are_restored: keeps a pattern in ymm17 and
 * ymm19 (AVX-512 registers, where glibc's memcpy holds data on such CPUs) for `rounds` turns of
 * a loop and returns 1 if either changed, 0 if not. A process stopped in this loop by an
 * attach must find its registers as they were. */
int hold(long rounds) {
    unsigned long bad = 0;
    __asm__ volatile(
        "vpternlogd $0xff, %%ymm19, %%ymm19, %%ymm19\n\t"
        "vmovdqa64 %%ymm19, %%ymm17\n\t"
        "mov %1, %%rcx\n\t"
        "1: vpxord %%ymm19, %%ymm17, %%ymm18\n\t"
        "vptestmd %%ymm18, %%ymm18, %%k1\n\t"
        "kortestw %%k1, %%k1\n\t"
        "jnz 2f\n\t"
        "vptestmd %%ymm19, %%ymm19, %%k1\n\t"
        "kortestw %%k1, %%k1\n\t"
        "jz 2f\n\t"
        "dec %%rcx\n\t"
        "jnz 1b\n\t"
        "xor %0, %0\n\t"
        "jmp 3f\n\t"
        "2: mov $1, %0\n\t"
        "3:\n\t"
        : "=r"(bad)
        : "r"(rounds)
        : "rcx", "xmm17", "xmm18", "xmm19", "k1", "cc");
    return (int)bad;
}
