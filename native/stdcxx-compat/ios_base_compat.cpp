// libstdc++ compatibility shim for TorchSharp 0.107 on GCC 12 systems (Debian 12).
//
// libLibTorchSharp.so was built with GCC 13, whose <iostream> start-up code calls
// std::ios_base_library_init() (GLIBCXX_3.4.32). GCC 12's libstdc++ does not export it, so the loader refuses the
// library. This file defines the function the way GCC 12 performs the same start-up: one static ios_base::Init.
// The linker version script exports it under the GLIBCXX_3.4.32 node; SafeCoDe's runtime marks that version
// requirement weak in a private copy of libLibTorchSharp.so and preloads this library with RTLD_GLOBAL.
#include <ios>

extern "C" __attribute__((visibility("default"))) void _ZSt21ios_base_library_initv()
{
    static std::ios_base::Init init;
    (void)init;
}
