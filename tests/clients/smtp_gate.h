/* smtp_gate: a TCP connection to 127.0.0.1:port, closed at once. With the
 * library preloaded and port an SMTP port of its policy, the process has now
 * had an SMTP connection: the signature memos (shim/nettle_memo.c,
 * shim/ossl_memo.c) are used only after one. Exits 2 when it cannot connect. */
#ifndef SMTP_GATE_H
#define SMTP_GATE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void smtp_gate(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("smtp_gate: connect");
        exit(2);
    }
    close(fd);
}

#endif
