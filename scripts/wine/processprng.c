/* bcryptprimitives.dll for wine 8, which lacks ProcessPrng: Rust's std on
 * Windows (1.78 and later) imports it for its random seeds (HashMap keys).
 * It forwards to RtlGenRandom (advapi32 SystemFunction036), which wine has.
 * Built and installed into the test prefix by scripts/test-windows.sh. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
