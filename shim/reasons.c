#include "reasons.h"

/* Arrays, not pointers: a table of pointers costs a relocation per string at
 * every exec, SMTP or not (an entry too long for them fails to compile). */
static const struct {
    char check[24];
    char text[112];
} reasons[SG_R_COUNT] = {
    [SG_R_CHAIN] = {"chain", "smtpguard: server certificate not trusted by the policy trust store"},
    [SG_R_HOSTNAME] = {"hostname", "smtpguard: server certificate does not match the host name"},
    [SG_R_PROTOCOL] = {"protocol", "smtpguard: TLS version below the policy minimum"},
    [SG_R_CIPHER] = {"cipher", "smtpguard: cipher is not forward-secret AEAD"},
    [SG_R_NO_NAME] = {"no-hostname", "smtpguard: no host name known for this server"},
    [SG_R_POLICY] = {"policy", "smtpguard: policy file is invalid, SMTP refused"},
    [SG_R_PIN] = {"pin", "smtpguard: server key does not match the pinned key"},
    [SG_R_APPLY] = {"apply", "smtpguard: could not apply the policy to the connection"},
    [SG_R_INJECTION] = {"injection", "smtpguard: STARTTLS response injection"},
    [SG_R_NO_CERT] = {"chain", "smtpguard: server presented no certificate"},
    [SG_R_REFUSED] = {"refused", "smtpguard: connection was refused earlier"},
    [SG_R_HANDSHAKE] = {"handshake", "smtpguard: TLS handshake failed under the policy"},
    [SG_R_STORE] = {"trust-store", "smtpguard: policy trust store cannot be read"},
    [SG_R_UNSUPPORTED] = {"unsupported", "smtpguard: this TLS library cannot be driven"},
    [SG_R_UNBOUND] = {"binding",
                      "smtpguard: cannot tell which SMTP connection this TLS session belongs to"},
    [SG_R_AMBIGUOUS] = {"ambiguous-name",
                        "smtpguard: several host names resolved to this server's address"},
    [SG_R_OWN_VERIFY] = {"program-verify",
                         "smtpguard: the program's own certificate verification refused the server"},
    [SG_R_UNVERIFIED] = {"unverified", "smtpguard: TLS 1.3 by a TLS library smtpguard cannot "
                                       "see into: the certificate is encrypted on the wire"},
    [SG_R_RESUMED] = {"unverified", "smtpguard: a TLS 1.2 session resumed by a TLS library "
                                    "smtpguard cannot see into: no certificate on the wire"},
    [SG_R_WIRE] = {"wire", "smtpguard: the TLS handshake on the wire cannot be judged"},
};

const char *sg_reason_check(int reason)
{
    return reason > 0 && reason < SG_R_COUNT ? reasons[reason].check : "unknown";
}

const char *sg_reason_text(int reason)
{
    return reason > 0 && reason < SG_R_COUNT ? reasons[reason].text : "smtpguard";
}
