/* early_main: links libearly.so (DT_NEEDED) and reports what its constructor did:
 * exit 0 when the early session delivered the message, 3 when it did not run. */
#include <stdio.h>

int early_status(void);

int main(void)
{
    int status = early_status();
    printf("early session: %s\n", status == 0 ? "delivered" : "did not run");
    return status == 0 ? 0 : 3;
}
