/* The handshake messages of the wire reader (wire_msg.c), called by its
 * record layer (wire.c) with whole messages. */
#ifndef SG_WIRE_MSG_H
#define SG_WIRE_MSG_H

#include "wire.h"

void sg_wire_client_msg(struct sg_wire *w, int type, const unsigned char *m, size_t len);
/* off: where the body m starts in w->srv.buf. */
void sg_wire_server_msg(struct sg_wire *w, int type, const unsigned char *m, size_t len,
                        size_t off);
void sg_wire_server_ccs(struct sg_wire *w);
/* An SSLv2-compatible ClientHello record body. */
void sg_wire_client_v2(struct sg_wire *w, const unsigned char *m, size_t len);

#endif
