// Package config is Signal's configuration: one struct whose tags name each
// key, its environment variable, its default and its description. Load binds
// all of them with viper (flag > environment > file > default); Fields lists
// them for the generated reference in docs/.
package config
