package sts

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateVerdicts = flag.Bool("update-verdicts", false, "rewrite testdata/realworld/mta-sts.verdicts from what ParsePolicy reads")

// TestRealWorldPolicies reads the real policies of testdata/realworld
// (SOURCES.md says where each was published) and compares each verdict
// with testdata/realworld/mta-sts.verdicts: the mode and mx patterns a
// careful sender applies, the deviations it tolerates, or why the policy
// is refused. The refusals are deliberate: a mode of "enforced",
// "enforcing", "live" or "[testing]", a version of "STLS1" and an mx list
// written as YAML are not policies RFC 8461 §3.2 defines, other senders
// refuse them too, and reading a guessed mode could refuse mail the
// domain's own MX hosts were meant to take; examples/check tells the
// owner. Jekyll sources (*.jekyll.txt) are not what the site serves.
func TestRealWorldPolicies(t *testing.T) {
	files, err := filepath.Glob("../testdata/realworld/mta-sts/*.txt")
	if err != nil || len(files) < 100 {
		t.Fatalf("%d real policies (%v), want the corpus of 100", len(files), err)
	}
	var got strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&got, "%s\t%s\n", filepath.Base(f), policyVerdict(string(b)))
	}
	const golden = "../testdata/realworld/mta-sts.verdicts"
	if *updateVerdicts {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	gotLines, wantLines := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(gotLines), len(wantLines)); i++ {
		var g, w string
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if g != w {
			t.Errorf("verdict\n got %s\nwant %s", g, w)
		}
	}
}

// policyVerdict is one line of the verdicts file.
func policyVerdict(text string) string {
	p, err := ParsePolicy(text)
	if err != nil {
		return "refused: " + err.Error()
	}
	v := fmt.Sprintf("%s max_age=%d mx=%s", p.Mode, int64(p.MaxAge.Seconds()), strings.Join(p.MX, ","))
	for _, d := range p.Deviations {
		v += "; tolerated " + d
	}
	return v
}

// TestRealWorldRecords: every published _mta-sts record of the corpus is
// read, its id as published.
func TestRealWorldRecords(t *testing.T) {
	f, err := os.Open("../testdata/realworld/txt/mta-sts.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		value, source, _ := strings.Cut(sc.Text(), "\t")
		rec, err := ParseRecord(value)
		if err != nil {
			t.Errorf("%s: %q: %v", source, value, err)
			continue
		}
		if !strings.Contains(value, "id="+rec.ID) {
			t.Errorf("%s: %q read with id %q", source, value, rec.ID)
		}
		n++
	}
	if n < 30 {
		t.Errorf("%d records read, want the corpus's 32", n)
	}
}
