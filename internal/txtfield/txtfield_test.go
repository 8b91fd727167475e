package txtfield

import (
	"strings"
	"testing"
)

func TestExtName(t *testing.T) {
	for s, want := range map[string]bool{
		"ext": true, "a": true, "9z": true, "a_b-c.d": true, strings.Repeat("a", 32): true,
		"": false, strings.Repeat("a", 33): false, "_a": false, "-a": false, ".a": false,
		"1%": false, "a b": false, "a=": false, "é": false, "a;": false,
	} {
		if got := ValidExtName(s); got != want {
			t.Errorf("ValidExtName(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestExtValue(t *testing.T) {
	for s, want := range map[string]bool{
		"x": true, "!#$%&'()*+,-./09:<>?@AZ[\\]^_`az{|}~": true,
		"": false, "=": false, "a=b": false, "a;b": false, "a b": false, "a\tb": false, "\x7f": false, "é": false,
	} {
		if got := ValidExtValue(s); got != want {
			t.Errorf("ValidExtValue(%q) = %v, want %v", s, got, want)
		}
	}
}
