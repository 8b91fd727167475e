package queue_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/queue"
)

// TestDSNForUTF8Addresses: RFC 6533. A DSN about mail sent with SMTPUTF8
// is internationalized; in the 7-bit form, a UTF-8 address is written in
// the utf-8 address type escaped to ASCII, and other text is made ASCII.
func TestDSNForUTF8Addresses(t *testing.T) {
	tests := []struct {
		name   string
		rcpt   queue.Recipient
		body   string
		reply  string // the server's reply text, when not the default
		global bool
		want   map[string]string // fields of the recipient's group
		header string            // in the returned header
	}{
		{
			name:   "UTF-8 recipient of an SMTPUTF8 message is reported in message/global-delivery-status",
			rcpt:   queue.Recipient{Addr: "jørn+x@bücher.example", ORcpt: "utf-8;Jørn+X@Bücher.example"},
			body:   "From: alice@example.org\r\nSubject: Grüße\r\n\r\nHallo.\r\n",
			global: true,
			want: map[string]string{
				// RFC 6533 §3 utf-8-addr-unitext: UTF-8 as is, "+" escaped.
				"Final-Recipient":    `utf-8; jørn\x{2B}x@bücher.example`,
				"Original-Recipient": `utf-8; Jørn\x{2B}X@Bücher.example`,
				"Remote-MTA":         "dns; mx.bücher.example",
				"Diagnostic-Code":    "smtp; 550 5.1.1 no such user  Injected: header",
			},
			header: "Subject: Grüße",
		},
		{
			name:   "UTF-8 header alone makes the DSN global",
			rcpt:   queue.Recipient{Addr: "bob@example.com"},
			body:   "From: alice@example.org\r\nSubject: Grüße\r\n\r\nHallo.\r\n",
			global: true,
			want:   map[string]string{"Final-Recipient": "rfc822; bob@example.com"},
			header: "Subject: Grüße",
		},
		{
			name: "UTF-8 ORCPT of an ASCII message is escaped to utf-8-addr-xtext",
			rcpt: queue.Recipient{Addr: "joern@example.com", ORcpt: "utf-8;jørn=1@例え.example"},
			body: testMessage,
			want: map[string]string{
				"Final-Recipient":    "rfc822; joern@example.com",
				"Original-Recipient": `utf-8; j\x{F8}rn\x{3D}1@\x{4F8B}\x{3048}.example`,
			},
			header: "Subject: test",
		},
		{
			name:  "UTF-8 server reply in a 7-bit DSN is made ASCII",
			rcpt:  queue.Recipient{Addr: "bob@example.com"},
			body:  testMessage,
			reply: "Benutzer „bob“ unbekannt",
			want: map[string]string{
				"Final-Recipient": "rfc822; bob@example.com",
				"Diagnostic-Code": "smtp; 550 5.1.1 Benutzer ?bob? unbekannt",
			},
			header: "Subject: test",
		},
		{
			name:   "UTF-8 server reply in a global DSN is kept",
			rcpt:   queue.Recipient{Addr: "jørn@example.com"},
			body:   testMessage,
			reply:  "Benutzer „jørn“ unbekannt",
			global: true,
			want: map[string]string{
				"Final-Recipient": "utf-8; jørn@example.com",
				"Diagnostic-Code": "smtp; 550 5.1.1 Benutzer „jørn“ unbekannt",
			},
			header: "Subject: test",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.d.set(tc.rcpt.Addr, delivery.PermanentFailure)
			if tc.reply != "" {
				h.d.onResult(func(res *delivery.Result) { res.Text = tc.reply })
			}
			_, err := h.q.Enqueue(context.Background(), &queue.Envelope{From: "alice@example.org", Recipients: []queue.Recipient{tc.rcpt}}, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the DSN", func() bool { return len(h.d.to("alice@example.org")) == 1 })
			d := parseDSN(t, h.d.to("alice@example.org")[0].Body)
			if d.Global != tc.global {
				t.Errorf("global form = %v, want %v", d.Global, tc.global)
			}
			if len(d.Recipients) != 1 {
				t.Fatalf("DSN reports %d recipients, want 1", len(d.Recipients))
			}
			checkFields(t, "recipient", d.Recipients[0], tc.want)
			wantType := "text/rfc822-headers"
			if tc.global {
				wantType = "message/global-headers"
			}
			if d.ReturnedType != wantType || !strings.Contains(string(d.Returned), tc.header) {
				t.Errorf("returned part %s = %q, want %s with %q", d.ReturnedType, d.Returned, wantType, tc.header)
			}
		})
	}
}

func TestDSNGlobalWithRetFullReturnsMessageGlobal(t *testing.T) {
	h := newHarness(t, nil)
	h.d.set("jørn@example.com", delivery.PermanentFailure)
	_, err := h.q.Enqueue(context.Background(), &queue.Envelope{From: "alice@example.org", Ret: queue.RetFull, Recipients: rcpts("jørn@example.com")},
		[]byte("Subject: Grüße\r\n\r\nHallo.\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the DSN", func() bool { return len(h.d.to("alice@example.org")) == 1 })
	d := parseDSN(t, h.d.to("alice@example.org")[0].Body)
	if d.ReturnedType != "message/global" || !strings.Contains(string(d.Returned), "Hallo.") {
		t.Errorf("returned part %s = %q, want the whole message as message/global (RFC 6532 §3.7)", d.ReturnedType, d.Returned)
	}
}
