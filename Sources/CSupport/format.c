#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include "CSupport.h"
#include <stdio.h>

int ssm_format_g(char *buf, size_t cap, double x, int digits) {
    int n = snprintf(buf, cap, "%.*g", digits, x);
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

void ssm_set_thread_name(const char *name) {
    char shortName[16];
    strncpy(shortName, name, 15);
    shortName[15] = 0;
    pthread_setname_np(pthread_self(), shortName);
}
