// The clock of a simulation-only harness (verif/dimm_harness.py): no Python in the loop.
// Runs the top until it raises `done` (or calls $finish); +WAVES=<file.fst> records an FST
// waveform when the model was built with --trace-fst.
#include <memory>
#include <string>

#include "Vharness.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_fst_c.h"
#endif

int main(int argc, char** argv) {
    const auto context = std::make_unique<VerilatedContext>();
    context->commandArgs(argc, argv);
    const auto top = std::make_unique<Vharness>(context.get());
#if VM_TRACE
    std::unique_ptr<VerilatedFstC> waves;
    const std::string waves_arg = context->commandArgsPlusMatch("WAVES=");
    if (!waves_arg.empty()) {
        context->traceEverOn(true);
        waves = std::make_unique<VerilatedFstC>();
        top->trace(waves.get(), 99);
        waves->open(waves_arg.substr(std::string("+WAVES=").size()).c_str());
    }
#endif
    top->clk = 0;
    top->eval();
    while (!top->done && !context->gotFinish()) {
        for (int level : {1, 0}) {
            context->timeInc(5);
            top->clk = level;
            top->eval();
#if VM_TRACE
            if (waves) waves->dump(context->time());
#endif
        }
    }
    top->final();
#if VM_TRACE
    if (waves) waves->close();
#endif
    return top->done ? 0 : 1;
}
