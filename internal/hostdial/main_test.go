package hostdial

import (
	"testing"

	"github.com/sealpost/sealpost/internal/testenv"
)

// TestMain fails the tests of this package if anything in them asks the
// machine's resolver.
func TestMain(m *testing.M) { testenv.Main(m) }
