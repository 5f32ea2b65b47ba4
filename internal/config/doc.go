// Package config is Signal's configuration: one struct whose tags name each
// key, its environment variable, its default and its description. Load binds
// all of them with viper (flag > environment > file > default); Fields lists
// them for the generated reference in docs/. Mistakes are not ignored: a
// key of the file that Config does not have, or a template naming a field
// the message does not have, is an error; a SIGNAL_ variable that names no
// key a warning (Config.Warnings) — each with the closest known name.
package config
