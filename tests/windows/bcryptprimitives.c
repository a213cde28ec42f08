/* Test harness only, never shipped: Wine 8.0 has no bcryptprimitives.dll, whose ProcessPrng
 * Rust's standard library imports. This shim, placed beside the .exe under test, provides it
 * over SystemFunction036 (RtlGenRandom, advapi32), which Wine has. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
