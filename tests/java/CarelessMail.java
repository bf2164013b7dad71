// A careless Jakarta Mail sender (tests/test_wire.py): trusts every certificate
// (mail.smtp.ssl.trust=*), no host name check, STARTTLS only if offered, every
// TLS version. For each "PORT" argument it sends one message to localhost:PORT,
// STARTTLS or implicit TLS as args[0] says, and prints "PORT ok" or
// "PORT fail: why". The JVM's own TLS (JSSE) is out of any preload's reach.
import jakarta.mail.Message;
import jakarta.mail.Session;
import jakarta.mail.Transport;
import jakarta.mail.internet.InternetAddress;
import jakarta.mail.internet.MimeMessage;
import java.util.Properties;

public class CarelessMail {
    public static void main(String[] args) {
        boolean implicit = args[0].equals("implicit");
        for (int i = 1; i < args.length; i++) {
            String port = args[i];
            try {
                send(implicit, port);
                System.out.println(port + " ok");
            } catch (Exception e) {
                Throwable root = e;
                while (root.getCause() != null)
                    root = root.getCause();
                System.out.println(port + " fail: " + e + " / " + root);
            }
            System.out.flush();
        }
    }

    static void send(boolean implicit, String port) throws Exception {
        String p = implicit ? "mail.smtps." : "mail.smtp.";
        Properties props = new Properties();
        props.put(p + "host", "localhost");
        props.put(p + "port", port);
        props.put(p + "auth", "true");
        // No lookup of our own name (EHLO, Message-ID): it would be remembered as a
        // name of 127.0.0.1 too on hosts that map their name there.
        props.put(p + "localhost", "careless.example");
        props.put("mail.from", "sender@example.com");
        props.put(p + "starttls.enable", "true");
        props.put(p + "ssl.trust", "*");
        props.put(p + "ssl.protocols", "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3");
        props.put(p + "connectiontimeout", "10000");
        props.put(p + "timeout", "10000");
        Session session = Session.getInstance(props);
        MimeMessage msg = new MimeMessage(session);
        msg.setFrom(new InternetAddress("sender@example.com"));
        msg.setRecipient(Message.RecipientType.TO, new InternetAddress("rcpt@example.com"));
        msg.setSubject("careless java");
        msg.setText("A message from a careless Java program.\n");
        Transport t = session.getTransport(implicit ? "smtps" : "smtp");
        try {
            t.connect("localhost", Integer.parseInt(port), "sguser", "Sg-S3cret-Pa55");
            t.sendMessage(msg, msg.getAllRecipients());
        } finally {
            t.close();
        }
    }
}
