// Package suggest finds the known name closest to a mistyped one, for the
// "did you mean" of unknown configuration keys, environment variables and
// flags.
package suggest
