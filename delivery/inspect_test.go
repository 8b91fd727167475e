package delivery

import (
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	tests := []struct {
		name                  string
		content               string
		eightBit, utf8, noTLS bool
	}{
		{"plain ASCII", "Subject: hi\r\n\r\nhello\r\n", false, false, false},
		{"8-bit body only", "Subject: hi\r\n\r\nh\xc3\xa9llo\r\n", true, false, false},
		{"UTF-8 in the header needs SMTPUTF8", "Subject: h\xc3\xa9\r\n\r\nhello\r\n", true, true, false},
		{"TLS-Required: No", "Subject: hi\r\nTLS-Required: No\r\n\r\nbody\r\n", false, false, true},
		{"field name and value are case-insensitive", "tls-required:   NO  \n\nbody\n", false, false, true},
		{"folded value", "TLS-Required:\r\n No\r\n\r\n", false, false, true},
		{"TLS-Required: Yes is not an opt-out", "TLS-Required: Yes\r\n\r\n", false, false, false},
		{"in the body it is not a header field", "Subject: x\r\n\r\nTLS-Required: No\r\n", false, false, false},
		{"header without body, no final line end", "TLS-Required: No", false, false, true},
		{"a similar field name does not count", "X-TLS-Required: No\r\n\r\n", false, false, false},
		{"empty message", "", false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Message{Body: strings.NewReader(tc.content), Size: int64(len(tc.content))}
			if err := m.Inspect(); err != nil {
				t.Fatal(err)
			}
			if m.EightBit != tc.eightBit || m.SMTPUTF8 != tc.utf8 || m.TLSOptional != tc.noTLS {
				t.Errorf("EightBit, SMTPUTF8, TLSOptional = %v, %v, %v; want %v, %v, %v",
					m.EightBit, m.SMTPUTF8, m.TLSOptional, tc.eightBit, tc.utf8, tc.noTLS)
			}
		})
	}
}

func TestInspectLongLines(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", 10000) + "\r\nTLS-Required: No\r\n\r\n" + strings.Repeat("b", 10000) + "\xff"
	m := &Message{Body: strings.NewReader(long), Size: int64(len(long))}
	if err := m.Inspect(); err != nil {
		t.Fatal(err)
	}
	if !m.TLSOptional || !m.EightBit || m.SMTPUTF8 {
		t.Errorf("TLSOptional, EightBit, SMTPUTF8 = %v, %v, %v; want true, true, false", m.TLSOptional, m.EightBit, m.SMTPUTF8)
	}
}

func TestInspectFieldInsideALongLineIsNotAField(t *testing.T) {
	// bufio's buffer is 4096 bytes: the line is cut right before the text
	// that would look like a field of its own.
	line := "X-Long: " + strings.Repeat("a", 4096-len("X-Long: ")) + "TLS-Required: No\r\n\r\nbody"
	m := &Message{Body: strings.NewReader(line), Size: int64(len(line))}
	if err := m.Inspect(); err != nil {
		t.Fatal(err)
	}
	if m.TLSOptional {
		t.Error("text inside a long header line was taken for a field")
	}
}
