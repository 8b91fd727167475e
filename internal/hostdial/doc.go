// Package hostdial connects to "host:port" by looking the host up through
// a resolver the caller chose, and dialling each of its addresses as
// "ip:port" in turn.
//
// A net.Dialer given a host name resolves it through the machine's
// resolver. Where sealpost is configured with a resolver, that would ask
// a server the operator did not choose, and one that an attacker who
// controls it could answer: an MTA-STS policy host that the system
// resolver cannot find makes the domain look as if it had no policy
// (review finding 2 of issue 11). The MTA-STS fetch, the TLS-RPT HTTPS
// submission and the relay's HTTPS client all dial through a [Dialer], so
// that the dial function they are given only ever receives IP addresses.
//
// A host that is already an IP address is dialled as it is. A host with
// no address is an error that names it; when every address fails, the
// errors of all of them are joined, in the order they were tried.
package hostdial
