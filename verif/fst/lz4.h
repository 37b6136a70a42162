/* Minimal stand-in for <lz4.h>, for Verilator's FST writer (fstcpp) on machines without
 * the LZ4 development package. fstcpp calls only LZ4_compressBound and
 * LZ4_compress_default; this version writes a valid LZ4 block holding the input as one
 * run of literals (no compression), which every LZ4 decoder (GTKWave, Surfer) reads.
 * verif/runner.py uses it only when the compiler cannot find the real <lz4.h>.
 * LZ4 block format: https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md
 */
#ifndef RECNMP_LZ4_LITERALS_H
#define RECNMP_LZ4_LITERALS_H

#include <string.h>

static inline int LZ4_compressBound(int size) {
    /* token + length bytes (one per 255 literals) + literals */
    return size < 0 ? 0 : size + size / 255 + 16;
}

static inline int LZ4_compress_default(const char *src, char *dst, int size, int capacity) {
    if (size < 0 || capacity < LZ4_compressBound(size)) return 0;
    char *out = dst;
    if (size < 15) {
        *out++ = (char)(size << 4);
    } else {
        *out++ = (char)(15 << 4);
        int rest = size - 15;
        for (; rest >= 255; rest -= 255) *out++ = (char)255;
        *out++ = (char)rest;
    }
    memcpy(out, src, (size_t)size);
    return (int)(out - dst) + size;
}

#endif
