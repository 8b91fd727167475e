package smtpclient

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

// encode runs the DATA encoder over chunks written one after another.
func encode(chunks ...string) (string, error) {
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 64)
	d := &dataWriter{w: bw, lineStart: true}
	for _, c := range chunks {
		if n, err := d.Write([]byte(c)); err != nil || n != len(c) {
			return "", err
		}
	}
	if err := d.Close(); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	return out.String(), nil
}

func TestDataWriter(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"empty message is the final dot alone", nil, ".\r\n"},
		{"CRLF lines pass unchanged", []string{"a\r\nb\r\n"}, "a\r\nb\r\n.\r\n"},
		{"bare LF becomes CRLF (RFC 5321 §2.3.8)", []string{"a\nb\n"}, "a\r\nb\r\n.\r\n"},
		{"bare CR becomes CRLF", []string{"a\rb\r"}, "a\r\nb\r\n.\r\n"},
		{"CR CR LF is two line ends", []string{"a\r\r\nb"}, "a\r\n\r\nb\r\n.\r\n"},
		{"LF CR is two line ends", []string{"a\n\rb"}, "a\r\n\r\nb\r\n.\r\n"},
		{"missing final line end is added", []string{"a"}, "a\r\n.\r\n"},
		{"leading dot is doubled (RFC 5321 §4.5.2)", []string{".hidden\r\n"}, "..hidden\r\n.\r\n"},
		{"lone dot line is doubled, not taken as the end", []string{"a\r\n.\r\nb\r\n"}, "a\r\n..\r\nb\r\n.\r\n"},
		{"dot after bare LF is doubled", []string{"a\n.b"}, "a\r\n..b\r\n.\r\n"},
		{"dot after bare CR is doubled", []string{"a\r.b"}, "a\r\n..b\r\n.\r\n"},
		{"dot inside a line is left alone", []string{"a.b\r\n"}, "a.b\r\n.\r\n"},
		{"CRLF split across writes", []string{"a\r", "\nb\r\n"}, "a\r\nb\r\n.\r\n"},
		{"dot at the start of a later write", []string{"a\r\n", ".b\r\n"}, "a\r\n..b\r\n.\r\n"},
		{"dot mid-line at the start of a later write", []string{"a", ".b\r\n"}, "a.b\r\n.\r\n"},
		{"CR at the end of one write, dot at the start of the next", []string{"a\r", ".\r\n"}, "a\r\n..\r\n.\r\n"},
		{"message ending in a dot line gets it stuffed", []string{"a\r\n."}, "a\r\n..\r\n.\r\n"},
		{"eight-bit and NUL octets pass unchanged", []string{"caf\xe9\x00\r\n"}, "caf\xe9\x00\r\n.\r\n"},
		{"long line longer than the buffer", []string{strings.Repeat("x", 200)}, strings.Repeat("x", 200) + "\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encode(tt.chunks...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("encode(%q) = %q, want %q", tt.chunks, got, tt.want)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestDataWriterReportsWriteErrors(t *testing.T) {
	d := &dataWriter{w: bufio.NewWriterSize(failingWriter{}, 16), lineStart: true}
	_, err := d.Write([]byte(strings.Repeat("a", 100)))
	if err == nil {
		t.Fatal("Write into a failing connection reported no error")
	}
	if err := d.Close(); err == nil {
		t.Fatal("Close after a failed write reported no error")
	}
}

// decodeData undoes the encoding as a server does (RFC 5321 §4.5.2) and
// checks the wire form: CRLF line ends only, the last line ".".
func decodeData(t *testing.T, wire string) string {
	t.Helper()
	if !strings.HasSuffix(wire, ".\r\n") || (len(wire) > 3 && !strings.HasSuffix(wire, "\r\n.\r\n")) {
		t.Fatalf("wire form %q does not end with the end-of-data line", wire)
	}
	lines := strings.Split(strings.TrimSuffix(wire, "\r\n"), "\r\n")
	for i, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			t.Fatalf("bare CR or LF in line %q", l)
		}
		if i < len(lines)-1 && l == "." {
			t.Fatalf("end-of-data line before the end in %q", wire)
		}
		lines[i] = strings.TrimPrefix(l, ".")
	}
	lines = lines[:len(lines)-1]
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

// normalise is what the encoder promises to deliver: every line end CRLF
// (a CRLF, a bare CR and a bare LF each being one line end), a final line
// end.
func normalise(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// checkWire checks the promises of the DATA encoding on its output,
// whatever the input: (a) no bare CR and no bare LF; (b) CRLF "." CRLF
// only as the terminator, and nothing else a lax receiver could take for
// the end of data; (c) every line of in that begins with "." goes out
// with one more, every other line as it is; (d) the output decodes back
// to normalise(in).
func checkWire(t *testing.T, in, wire string) {
	t.Helper()
	for i := 0; i < len(wire); i++ {
		switch {
		case wire[i] == '\r' && (i+1 == len(wire) || wire[i+1] != '\n'):
			t.Fatalf("bare CR at %d in %q", i, wire)
		case wire[i] == '\n' && (i == 0 || wire[i-1] != '\r'):
			t.Fatalf("bare LF at %d in %q", i, wire)
		}
	}
	if wire != ".\r\n" {
		if strings.HasPrefix(wire, ".\r\n") {
			t.Fatalf("%q ends the data at once", wire)
		}
		if i := strings.Index(wire, "\r\n.\r\n"); i != len(wire)-5 {
			t.Fatalf("end of data at %d of %d in %q", i, len(wire), wire)
		}
	}
	body := wire[:len(wire)-3] // without the final ".\r\n"
	for _, lax := range []string{"\n.\n", "\r.\r", "\n.\r", "\r.\n", "\r\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r"} {
		if strings.Contains(body, lax) {
			t.Fatalf("%q holds %q, an end of data to a lax receiver", wire, lax)
		}
	}
	want := strings.Split(strings.TrimSuffix(normalise(in), "\r\n"), "\r\n")
	got := strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")
	if in == "" {
		want = nil
	}
	if body == "" {
		got = nil
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines out for %d in: %q from %q", len(got), len(want), wire, in)
	}
	for i := range want {
		if w := want[i]; got[i] != w && (w == "" || w[0] != '.' || got[i] != "."+w) {
			t.Fatalf("line %d: %q for %q (dot-stuffing, RFC 5321 §4.5.2)", i, got[i], w)
		}
	}
	if got, want := decodeData(t, wire), normalise(in); got != want {
		t.Fatalf("decode(encode(%q)) = %q, want %q", in, got, want)
	}
}

// chunked splits in into writes whose lengths cuts gives in turn (each
// octet of cuts one length, 0 to 31: zero-length writes included), the
// rest in one piece.
func chunked(in, cuts []byte) []string {
	var chunks []string
	for _, c := range cuts {
		n := min(int(c%32), len(in))
		chunks = append(chunks, string(in[:n]))
		in = in[n:]
	}
	return append(chunks, string(in))
}

// FuzzDataWriter feeds arbitrary octets in arbitrary writes to the DATA
// encoder and checks its promises (checkWire), and that the way the input
// was cut does not change the output.
func FuzzDataWriter(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", ".\r\n", "\r.\n.", "a\n\r\r\n.", "..\r\n...\n", "x\r",
		"a\n.\nMAIL FROM:<x>", "a\r.\rb", "a\n.\r\nb", "a\r\n.\nb", "\r\n.\r\n", "."} {
		f.Add([]byte(s), []byte{1, 0, 3})
	}
	f.Add([]byte(strings.Repeat("a\r", 40)+".\r\n"), []byte{31, 1, 1, 1})
	f.Fuzz(func(t *testing.T, in, cuts []byte) {
		whole, err := encode(string(in))
		if err != nil {
			t.Fatal(err)
		}
		checkWire(t, string(in), whole)
		wire, err := encode(chunked(in, cuts)...)
		if err != nil {
			t.Fatal(err)
		}
		if wire != whole {
			t.Fatalf("%q written as %q encodes to %q, in one write to %q", in, chunked(in, cuts), wire, whole)
		}
	})
}
