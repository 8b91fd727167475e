package dane

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sealpost/sealpost/internal/testenv"
)

// recordFor builds the TLSA record "u s m" that matches cert.
func recordFor(u Usage, s Selector, m MatchingType, cert *x509.Certificate) TLSARecord {
	content := cert.Raw
	if s == SelectorSPKI {
		content = cert.RawSubjectPublicKeyInfo
	}
	var data []byte
	switch m {
	case MatchFull:
		data = bytes.Clone(content)
	case MatchSHA256:
		sum := sha256.Sum256(content)
		data = sum[:]
	case MatchSHA512:
		sum := sha512.Sum512(content)
		data = sum[:]
	}
	return TLSARecord{Usage: u, Selector: s, MatchingType: m, Data: data}
}

func TestTLSARecordFromRR(t *testing.T) {
	rr := &dns.TLSA{Hdr: dns.RR_Header{Name: "_25._tcp.mx.example.com."}, Usage: 3, Selector: 1, MatchingType: 1,
		Certificate: strings.Repeat("ab", 32)}
	r, err := TLSARecordFromRR(rr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Usage != DANEEE || r.Selector != SelectorSPKI || r.MatchingType != MatchSHA256 || len(r.Data) != 32 || r.Data[0] != 0xab {
		t.Fatalf("got %+v", r)
	}
	if !r.Usable() {
		t.Errorf("3 1 1 with 32 bytes: not usable: %v", r.Check())
	}
	if got, want := r.String(), "3 1 1 "+strings.Repeat("ab", 32); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	t.Run("odd hex is malformed", func(t *testing.T) {
		_, err := TLSARecordFromRR(&dns.TLSA{Usage: 3, Certificate: "abc"})
		if !errors.Is(err, ErrMalformedTLSA) {
			t.Fatalf("err = %v, want ErrMalformedTLSA", err)
		}
	})
	t.Run("nil is malformed", func(t *testing.T) {
		if _, err := TLSARecordFromRR(nil); !errors.Is(err, ErrMalformedTLSA) {
			t.Fatalf("err = %v, want ErrMalformedTLSA", err)
		}
	})
	t.Run("record decoded from the wire", func(t *testing.T) {
		in, err := dns.NewRR("_25._tcp.mx.example.com. 300 IN TLSA 2 0 2 " + strings.Repeat("0F", 64))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, dns.Len(in))
		n, err := dns.PackRR(in, buf, 0, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := dns.UnpackRR(buf[:n], 0)
		if err != nil {
			t.Fatal(err)
		}
		r, err := TLSARecordFromRR(out.(*dns.TLSA))
		if err != nil {
			t.Fatal(err)
		}
		if r.Usage != DANETA || r.MatchingType != MatchSHA512 || !bytes.Equal(r.Data, bytes.Repeat([]byte{0x0f}, 64)) {
			t.Fatalf("got %v", r)
		}
	})
}

func TestParseTLSARecord(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // String() of the result; "" when an error is expected
	}{
		{"presentation format", "3 1 1 " + strings.Repeat("00", 32), "3 1 1 " + strings.Repeat("00", 32)},
		{"data split by white space", "2 0 1 0011\t2233 \n4455", "2 0 1 001122334455"},
		{"upper-case hex", "3 1 0 ABCDEF", "3 1 0 abcdef"},
		{"unassigned values kept", "255 7 9 00", "255 7 9 00"},
		{"too few fields", "3 1 1", ""},
		{"usage over 255", "256 1 1 00", ""},
		{"negative selector", "3 -1 1 00", ""},
		{"non-hex data", "3 1 1 zz", ""},
		{"odd hex digits", "3 1 1 abc", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseTLSARecord(tc.in)
			if tc.want == "" {
				if !errors.Is(err, ErrMalformedTLSA) {
					t.Fatalf("ParseTLSARecord(%q) = %v, %v; want ErrMalformedTLSA", tc.in, r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.String() != tc.want {
				t.Errorf("got %q, want %q", r.String(), tc.want)
			}
		})
	}
}

func TestUsable(t *testing.T) {
	d32, d64 := make([]byte, 32), make([]byte, 64)
	for _, tc := range []struct {
		name   string
		r      TLSARecord
		usable bool
	}{
		{"DANE-EE SPKI SHA2-256 is usable", TLSARecord{DANEEE, SelectorSPKI, MatchSHA256, d32}, true},
		{"DANE-EE Cert SHA2-512 is usable", TLSARecord{DANEEE, SelectorCert, MatchSHA512, d64}, true},
		{"DANE-TA Cert Full is usable", TLSARecord{DANETA, SelectorCert, MatchFull, []byte{0x30}}, true},
		{"DANE-TA SPKI Full is usable", TLSARecord{DANETA, SelectorSPKI, MatchFull, []byte{0x30}}, true},
		{"PKIX-TA is unusable for SMTP", TLSARecord{PKIXTA, SelectorCert, MatchSHA256, d32}, false},
		{"PKIX-EE is unusable for SMTP", TLSARecord{PKIXEE, SelectorSPKI, MatchSHA256, d32}, false},
		{"unassigned usage is unusable", TLSARecord{4, SelectorSPKI, MatchSHA256, d32}, false},
		{"private usage is unusable", TLSARecord{255, SelectorSPKI, MatchSHA256, d32}, false},
		{"unassigned selector is unusable", TLSARecord{DANEEE, 2, MatchSHA256, d32}, false},
		{"unassigned matching type is unusable", TLSARecord{DANEEE, SelectorSPKI, 3, d32}, false},
		{"SHA2-256 with 31 bytes is unusable", TLSARecord{DANEEE, SelectorSPKI, MatchSHA256, d32[:31]}, false},
		{"SHA2-256 with 33 bytes is unusable", TLSARecord{DANEEE, SelectorSPKI, MatchSHA256, make([]byte, 33)}, false},
		{"SHA2-256 with 64 bytes is unusable", TLSARecord{DANEEE, SelectorSPKI, MatchSHA256, d64}, false},
		{"SHA2-512 with 32 bytes is unusable", TLSARecord{DANEEE, SelectorSPKI, MatchSHA512, d32}, false},
		{"Full with no data is unusable", TLSARecord{DANEEE, SelectorCert, MatchFull, nil}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.r.Check() == nil) != tc.usable {
				t.Errorf("%v: Check() = %v, want usable %v", tc.r, tc.r.Check(), tc.usable)
			}
			if got := tc.r.Usable(); got != tc.usable {
				t.Errorf("%v: Usable() = %v, want %v (Check: %v)", tc.r, got, tc.usable, tc.r.Check())
			}
			if !tc.usable && tc.r.Check().Error() == "" {
				t.Errorf("Check gives no reason")
			}
		})
	}
}

func TestMatches(t *testing.T) {
	ca, err := testenv.NewCA("tlsa test root")
	if err != nil {
		t.Fatal(err)
	}
	leaf := ca.MustLeaf(testenv.LeafOptions{}, "mx.example.com").Leaf
	other := ca.MustLeaf(testenv.LeafOptions{}, "mx.example.com").Leaf
	for _, s := range []Selector{SelectorCert, SelectorSPKI} {
		for _, m := range []MatchingType{MatchFull, MatchSHA256, MatchSHA512} {
			r := recordFor(DANEEE, s, m, leaf)
			name := "3 " + s.String() + " " + m.String()
			t.Run(name+" matches its certificate", func(t *testing.T) {
				if !r.Matches(leaf) {
					t.Error("no match")
				}
			})
			t.Run(name+" does not match another key", func(t *testing.T) {
				if r.Matches(other) {
					t.Error("matched")
				}
			})
		}
	}
	t.Run("SPKI record survives a new certificate for the same key", func(t *testing.T) {
		key, err := testenv.NewKey(false)
		if err != nil {
			t.Fatal(err)
		}
		a := ca.MustLeaf(testenv.LeafOptions{Key: key}, "mx.example.com").Leaf
		b := ca.MustLeaf(testenv.LeafOptions{Key: key}, "mx.example.com").Leaf
		if !recordFor(DANEEE, SelectorSPKI, MatchSHA256, a).Matches(b) {
			t.Error("3 1 1 of the first certificate does not match the second")
		}
		if recordFor(DANEEE, SelectorCert, MatchSHA256, a).Matches(b) {
			t.Error("3 0 1 of the first certificate matches the second")
		}
	})
	t.Run("unassigned selector matches nothing", func(t *testing.T) {
		r := recordFor(DANEEE, SelectorSPKI, MatchSHA256, leaf)
		r.Selector = 2
		if r.Matches(leaf) {
			t.Error("matched")
		}
	})
	t.Run("nil certificate matches nothing", func(t *testing.T) {
		if recordFor(DANEEE, SelectorSPKI, MatchSHA256, leaf).Matches(nil) {
			t.Error("matched")
		}
	})
}

func TestUsableRecords(t *testing.T) {
	d32, d64 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 64)
	ee256 := TLSARecord{DANEEE, SelectorSPKI, MatchSHA256, d32}
	ee512 := TLSARecord{DANEEE, SelectorSPKI, MatchSHA512, d64}
	eeCert256 := TLSARecord{DANEEE, SelectorCert, MatchSHA256, d32}
	ta256 := TLSARecord{DANETA, SelectorSPKI, MatchSHA256, d32}
	eeFull := TLSARecord{DANEEE, SelectorSPKI, MatchFull, []byte{0x30, 0}}
	pkix := TLSARecord{PKIXEE, SelectorSPKI, MatchSHA512, d64}
	short := TLSARecord{DANEEE, SelectorSPKI, MatchSHA512, d32}
	for _, tc := range []struct {
		name     string
		in, want []TLSARecord
	}{
		{"unusable records are dropped", []TLSARecord{pkix, ee256, short}, []TLSARecord{ee256}},
		{"SHA2-512 sets aside SHA2-256 of the same usage and selector (RFC 7671 §9)",
			[]TLSARecord{ee256, ee512, eeCert256, ta256, eeFull}, []TLSARecord{ee512, eeCert256, ta256, eeFull}},
		{"an unusable SHA2-512 record sets nothing aside", []TLSARecord{ee256, short}, []TLSARecord{ee256}},
		{"a PKIX SHA2-512 record sets nothing aside", []TLSARecord{ee256, pkix}, []TLSARecord{ee256}},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := UsableRecords(tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].String() != tc.want[i].String() {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// FuzzTLSA feeds hostile record contents through conversion, parsing,
// usability, matching and a whole verification: nothing may panic, and a
// record judged usable must have data of the length its type demands.
func FuzzTLSA(f *testing.F) {
	ca, err := testenv.NewCA("fuzz root")
	if err != nil {
		f.Fatal(err)
	}
	inter, err := ca.Intermediate("fuzz intermediate")
	if err != nil {
		f.Fatal(err)
	}
	tc := ca.MustLeaf(testenv.LeafOptions{Issuer: inter}, "mx.example.com")
	chain := []*x509.Certificate{tc.Leaf, inter.Cert, ca.Cert}

	f.Add(uint8(3), uint8(1), uint8(1), recordFor(DANEEE, SelectorSPKI, MatchSHA256, tc.Leaf).Data, "3 1 1 00")
	f.Add(uint8(2), uint8(1), uint8(0), ca.Cert.RawSubjectPublicKeyInfo, "2 1 0 3059")
	f.Add(uint8(2), uint8(0), uint8(0), inter.Cert.Raw, "2 0 0 30")
	f.Add(uint8(2), uint8(1), uint8(0), []byte{0x30, 0x03, 0x02, 0x01}, "2 1 0 30 03 02 01")
	f.Add(uint8(3), uint8(1), uint8(1), make([]byte, 31), "3 1 1 "+strings.Repeat("0", 62))
	f.Add(uint8(255), uint8(255), uint8(255), []byte{}, "255 255 255 ")
	f.Add(uint8(0), uint8(0), uint8(2), make([]byte, 64), "x y z")
	f.Fuzz(func(t *testing.T, u, s, m uint8, data []byte, text string) {
		rr := &dns.TLSA{Usage: u, Selector: s, MatchingType: m, Certificate: hex.EncodeToString(data)}
		r, err := TLSARecordFromRR(rr)
		if err != nil {
			t.Fatalf("hex from EncodeToString rejected: %v", err)
		}
		if r.Usable() != (r.Check() == nil) {
			t.Fatalf("%v: Usable() = %v but Check() = %v", r, r.Usable(), r.Check())
		}
		if r.Usable() {
			switch r.MatchingType {
			case MatchSHA256:
				if len(r.Data) != 32 {
					t.Fatalf("usable SHA2-256 record with %d bytes", len(r.Data))
				}
			case MatchSHA512:
				if len(r.Data) != 64 {
					t.Fatalf("usable SHA2-512 record with %d bytes", len(r.Data))
				}
			}
		}
		sums := newDigestCache(chain)
		for i, c := range chain {
			if r.Matches(c) != sums.matches(r, i) {
				t.Fatalf("%v: Matches and the digest cache disagree at depth %d", r, i)
			}
		}
		// Hostile text, as a record from a zone file or configuration.
		_, _ = TLSARecordFromRR(&dns.TLSA{Usage: u, Certificate: text})
		if p, err := ParseTLSARecord(text); err == nil {
			q, err := ParseTLSARecord(p.String())
			if err != nil || q.String() != p.String() {
				t.Fatalf("String() of %v does not parse back: %v", p, err)
			}
		}
		req := &Requirement{Outcome: AuthenticationRequired, Host: "mx.example.com", BaseDomain: "mx.example.com",
			Records: []TLSARecord{r}}
		m1, err := req.Verify(chain, tc.Leaf.NotBefore.Add(1))
		if (m1 == nil) == (err == nil) {
			t.Fatalf("Verify returned match %v and error %v", m1, err)
		}
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.ResultType() == "" || ve.Error() == "" {
				t.Fatalf("Verify error %v is not a usable *VerifyError", err)
			}
		}
	})
}
