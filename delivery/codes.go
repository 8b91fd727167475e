package delivery

import "github.com/emersion/go-smtp"

// The enhanced status codes of the failures delivery decides itself, in
// one table (RFC 3463 unless noted; where it leaves a choice, the code
// large providers use for the same case). failure replaces the class
// digit with the reply code's, so a code listed as 4.x.x also serves a
// permanent failure of the same kind.
var (
	// X.1: addressing.
	codeBadDomain     = smtp.EnhancedCode{5, 1, 2}  // bad destination system address
	codeLiteralRefuse = smtp.EnhancedCode{5, 1, 2}  // an address literal, not allowed
	codeBadMailbox    = smtp.EnhancedCode{5, 1, 3}  // bad destination mailbox address syntax
	codeBadSender     = smtp.EnhancedCode{5, 1, 7}  // bad sender's mailbox address syntax
	codeNullMX        = smtp.EnhancedCode{5, 1, 10} // the domain accepts no mail (RFC 7505 §4.3)

	// X.3: the mail system.
	codeSource     = smtp.EnhancedCode{4, 3, 0} // the message content could not be read
	codeBadNextHop = smtp.EnhancedCode{4, 3, 5} // system incorrectly configured

	// X.4: network and routing.
	codeNetwork       = smtp.EnhancedCode{4, 4, 0} // other network or routing failure
	codeConnect       = smtp.EnhancedCode{4, 4, 1} // no answer from host
	codeConnection    = smtp.EnhancedCode{4, 4, 2} // bad connection
	codeLostAfterData = smtp.EnhancedCode{4, 4, 2} // bad connection, after the content was sent
	codeDNSFailure    = smtp.EnhancedCode{4, 4, 3} // directory server failure
	codeDANELookup    = smtp.EnhancedCode{4, 4, 3} // directory server failure, for a TLSA look-up
	codeNoAddress     = smtp.EnhancedCode{4, 4, 4} // unable to route: no host or address to try
	codeUnroutable    = smtp.EnhancedCode{5, 4, 4} // unable to route
	codeExpired       = smtp.EnhancedCode{4, 4, 7} // the attempt ran out of time
	codeMXNotAllowed  = smtp.EnhancedCode{4, 4, 8} // MX host not allowed by the domain's policy

	// X.5: the protocol.
	codeProtocol     = smtp.EnhancedCode{5, 5, 0} // other protocol status
	codeBadParameter = smtp.EnhancedCode{5, 5, 4} // invalid command arguments

	// X.7: security.
	codeCertificate   = smtp.EnhancedCode{4, 7, 5}  // cryptographic failure
	codeTLSNotOffered = smtp.EnhancedCode{4, 7, 10} // encryption needed
	codeREQUIRETLS    = smtp.EnhancedCode{5, 7, 30} // REQUIRETLS support required (RFC 8689 §5)
)
