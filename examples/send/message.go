package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sealpost/sealpost/delivery"
)

// buildMessage reads the message and checks the envelope.
func buildMessage(o *options, env *Env) (*delivery.Message, error) {
	if o.from == "" {
		return nil, errors.New(`-from is required: the envelope sender, which receives bounces ("<>" for none)`)
	}
	from := o.from
	if from == "<>" {
		from = ""
	} else if err := checkAddress(from); err != nil {
		return nil, fmt.Errorf("-from %q: %v", o.from, err)
	}
	msg := &delivery.Message{From: from, RequireTLS: o.requireTLS}
	for _, r := range o.recipients {
		if err := checkAddress(r); err != nil {
			return nil, fmt.Errorf("recipient %q: %v", r, err)
		}
		msg.Recipients = append(msg.Recipients, delivery.Recipient{Address: r})
	}
	body, err := readMessage(o.message, env.Stdin)
	if err != nil {
		return nil, err
	}
	msg.Body, msg.Size = bytes.NewReader(body), int64(len(body))
	// Inspect sets SMTPUTF8, 8BITMIME and "TLS-Required: No" from the
	// content; reading a bytes.Reader does not fail.
	if err := msg.Inspect(); err != nil {
		return nil, fmt.Errorf("reading the message: %v", err)
	}
	return msg, nil
}

// readMessage reads the message from path, or from stdin for "" and "-".
func readMessage(path string, stdin io.Reader) ([]byte, error) {
	src, name := stdin, "standard input"
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("-message: %v", err)
		}
		defer f.Close()
		src, name = f, path
	}
	if src == nil {
		src = strings.NewReader("")
	}
	body, err := io.ReadAll(io.LimitReader(src, maxMessageSize+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading the message from %s: %v", name, err)
	case len(body) > maxMessageSize:
		return nil, fmt.Errorf("the message from %s is larger than %d bytes", name, maxMessageSize)
	case len(bytes.TrimSpace(body)) == 0:
		return nil, fmt.Errorf("the message from %s is empty: give it on standard input or with -message", name)
	case !hasHeader(body):
		return nil, fmt.Errorf("the message from %s does not start with a header field (\"From: ...\"): send takes a whole message, header and body", name)
	}
	return body, nil
}

// hasHeader reports whether body starts with something shaped like a
// header field: a name of printable characters other than ':', then ':'.
func hasHeader(body []byte) bool {
	line, _, _ := bytes.Cut(body, []byte("\n"))
	name, _, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// checkAddress accepts "local@domain" as the SMTP envelope carries it:
// no angle brackets, white space or control characters.
func checkAddress(a string) error {
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 {
		return errors.New(`want "local@domain"`)
	}
	for _, c := range []byte(a) {
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return fmt.Errorf("character %q is not allowed in an envelope address", c)
		}
	}
	return nil
}
