#include "CSupport.h"
#include <stdio.h>

int ssm_format_g(char *buf, size_t cap, double x, int digits) {
    int n = snprintf(buf, cap, "%.*g", digits, x);
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}
