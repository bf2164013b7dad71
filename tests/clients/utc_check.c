/* utc_check: sg_utc (shim/utc.c) gives gmtime_r's date and time for every
 * second it is asked about: each day boundary from 1600 to 2400 with its
 * neighbours, and a sweep of odd seconds. Prints "checked N" and exits 0,
 * or names the first difference and exits 1. */
#include <stdio.h>
#include <time.h>

#include "utc.h"

static int same(time_t t)
{
    struct tm tm;
    struct sg_utc u;
    gmtime_r(&t, &tm);
    sg_utc(t, &u);
    if (u.year == tm.tm_year + 1900 && u.mon == tm.tm_mon + 1 && u.mday == tm.tm_mday &&
        u.hour == tm.tm_hour && u.min == tm.tm_min && u.sec == tm.tm_sec)
        return 1;
    printf("differs at %lld: %04d-%02d-%02d %02d:%02d:%02d, gmtime_r %04d-%02d-%02d "
           "%02d:%02d:%02d\n", (long long)t, u.year, u.mon, u.mday, u.hour, u.min, u.sec,
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return 0;
}

int main(void)
{
    const long long first = -11676096000LL, last = 13569465600LL; /* 1600-01-01, 2400-01-01 */
    long long n = 0;
    for (long long day = first; day <= last; day += 86400, n += 3)
        if (!same((time_t)day) || !same((time_t)(day - 1)) || !same((time_t)(day + 43199)))
            return 1;
    for (long long t = first; t <= last; t += 999983, n++) /* a prime: every second of a day */
        if (!same((time_t)t))
            return 1;
    printf("checked %lld\n", n);
    return 0;
}
