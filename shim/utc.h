/* The UTC date and time of POSIX seconds, without the time zone file that
 * glibc's gmtime_r reads at its first call. */
#ifndef SG_UTC_H
#define SG_UTC_H

#include <time.h>

struct sg_utc {
    int year, mon, mday, hour, min, sec; /* mon 1..12 */
};
void sg_utc(time_t t, struct sg_utc *u);

#endif
