//go:build race

package sts

// raceEnabled: the race detector changes allocation counts.
const raceEnabled = true
