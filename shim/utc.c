#include "utc.h"

/* glibc's gmtime_r reads /etc/localtime at its first call (tzset): the date
 * of UTC seconds is computed here instead (days to civil date, proleptic
 * Gregorian; a day is always 86,400 POSIX seconds). */
void sg_utc(time_t t, struct sg_utc *u)
{
    long long days = t / 86400, secs = t % 86400;
    if (secs < 0)
        secs += 86400, days--;
    u->hour = (int)(secs / 3600), u->min = (int)(secs / 60 % 60), u->sec = (int)(secs % 60);
    days += 719468; /* from 1970-01-01 to 0000-03-01 */
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    long long doe = days - era * 146097;                              /* [0, 146096] */
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);          /* [0, 365] */
    long long mp = (5 * doy + 2) / 153;                               /* March is 0 */
    u->mday = (int)(doy - (153 * mp + 2) / 5 + 1);
    u->mon = (int)(mp < 10 ? mp + 3 : mp - 9);
    u->year = (int)(yoe + era * 400 + (u->mon <= 2));
}
