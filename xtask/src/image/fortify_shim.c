/* The static (musl) mamori links LLVM's libunwind.a from Debian
 * (libunwind-22-dev), which was built against glibc with _FORTIFY_SOURCE
 * and so calls __fprintf_chk, which musl does not have. This is it. */
#include <stdarg.h>
#include <stdio.h>
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...) {
    (void)flag;
    va_list ap;
    va_start(ap, fmt);
    int r = vfprintf(f, fmt, ap);
    va_end(ap);
    return r;
}
