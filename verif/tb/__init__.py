"""cocotb testbenches, one module per block; run them through verif.runner."""
