//go:build !race

package sts

const raceEnabled = false
