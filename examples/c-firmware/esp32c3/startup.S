/*
 * Reset entry of the ESP32-C3 demo application. The second-stage bootloader
 * has already loaded .iram0.text and .dram0.data into SRAM and mapped the
 * flash segments, so all that is left is: stack, global pointer, .bss, main().
 * (This firmware is test data for thinger-patch; it is never run.)
 */
    .file "startup.S"   /* names the STT_FILE symbol; otherwise ld names it after the temporary object */
    .section .iram0.entry, "ax"
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
2:  call    main
3:  wfi
    j       3b
    .size call_start_cpu0, . - call_start_cpu0
