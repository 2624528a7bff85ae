/* Entry of a micro-guest. The VMM starts us at CPL3 with RSP at the initial stack top and RDI
 * pointing at the boot info; main's return value goes to the test-exit port. */
    .section .text.start, "ax"
    .globl _start
_start:
    and $-16, %rsp
    call main
    mov %eax, %edi
    call guest_exit
1:  jmp 1b

/* The note that tells iovmm this ELF is a micro-guest (name "IOVMM", type 1, version 1). */
    .section .note.iovmm, "a"
    .p2align 2
    .long 6          /* namesz */
    .long 4          /* descsz */
    .long 1          /* type */
    .asciz "IOVMM"
    .p2align 2
    .long 1          /* version */
    .p2align 2

    .section .note.GNU-stack, "", @progbits
