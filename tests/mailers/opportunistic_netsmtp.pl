#!/usr/bin/perl
# An opportunistic mailer: Perl Net::SMTP (libnet) calling starttls() only when
# the server offers it, with no certificate verification, then AUTH (Authen::SASL).
#
# usage: opportunistic_netsmtp.pl HOST PORT USER PASSWORD FROM TO MESSAGE_FILE
# Exit 0 only when the message was accepted.
use strict;
use warnings;
use Net::SMTP;

my ($host, $port, $user, $password, $from, $to, $path) = @ARGV;
die "usage: $0 HOST PORT USER PASSWORD FROM TO MESSAGE_FILE\n" unless defined $path;

open(my $fh, '<:raw', $path) or die "$path: $!\n";
my $message = do { local $/; <$fh> };
close($fh);

my $smtp = Net::SMTP->new($host, Port => $port, Timeout => 20, Hello => 'client.example')
    or die "connect: $@\n";
# supports() returns the keyword's parameters: "" (false) for STARTTLS
if (defined $smtp->supports('STARTTLS')) {
    $smtp->starttls(SSL_verify_mode => 0) or die "starttls: " . $smtp->message . "\n";
}
$smtp->auth($user, $password) or die "auth: " . $smtp->message . "\n";
$smtp->mail($from) or die "mail: " . $smtp->message . "\n";
$smtp->to($to) or die "rcpt: " . $smtp->message . "\n";
$smtp->data() or die "data: " . $smtp->message . "\n";
$smtp->datasend($message) or die "datasend failed\n";
$smtp->dataend() or die "dataend: " . $smtp->message . "\n";
$smtp->quit();
exit 0;
