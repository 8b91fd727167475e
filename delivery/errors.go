package delivery

import (
	"fmt"

	"github.com/emersion/go-smtp"
)

// Error is a failed delivery: the remote server's reply, or a failure of
// our own (a DNS failure, a security requirement no host met), expressed
// the way a server would, with a reply code and an RFC 3463 enhanced code.
type Error struct {
	// Temporary says that the same delivery may succeed later; otherwise
	// the failure is permanent and the message should bounce.
	Temporary bool
	// Code is the SMTP reply code (4xx or 5xx). For failures of our own it
	// is the code big providers use for the same situation.
	Code int
	// Enhanced is the enhanced status code, e.g. {5, 1, 10} for a null MX.
	Enhanced smtp.EnhancedCode
	// Message says what happened, for a bounce or a log line.
	Message string
	// Remote says that Code, Enhanced and Message are a remote server's
	// reply rather than a decision of our own.
	Remote bool
	// Err is the underlying cause, if any.
	Err error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// failure builds an Error of our own. Whether it is temporary, and the
// class digit of the enhanced code, follow from the reply code.
func failure(code int, enhanced smtp.EnhancedCode, err error, format string, args ...any) *Error {
	enhanced[0] = code / 100
	return &Error{Temporary: code/100 == 4, Code: code, Enhanced: enhanced, Message: fmt.Sprintf(format, args...), Err: err}
}
