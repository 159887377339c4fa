/* Entry of the stand-in bootloader: stack, gp, .bss, then C. */
    .file "start.S"     /* names the STT_FILE symbol; otherwise ld names it after the temporary object */
    .section .entry.text, "ax"
    .globl call_start_cpu0
    .type call_start_cpu0, @function
call_start_cpu0:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    la      sp, _stack_top
    la      t0, _bss_start
    la      t1, _bss_end
1:  bgeu    t0, t1, 2f
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       1b
2:  j       bootloader_main
    .size call_start_cpu0, . - call_start_cpu0
