// Command releasecheck validates .goreleaser.yaml the way goreleaser loads
// it: goreleaser's own configuration package, at the version release.mk
// pins, decodes the file strictly (an unknown key or a value of the wrong
// type is an error) and the file must be of version 2. It is what `make
// test` runs (release-check): it compiles goreleaser's configuration
// package only, in seconds, where `goreleaser check` needs the whole of
// goreleaser built from source (minutes, and ~2 GB of modules, on every
// fresh machine). `make goreleaser-check` and `make snapshot` still run
// goreleaser itself, which also applies its defaults and deprecations.
//
//	go -C scripts/releasecheck run . ../../.goreleaser.yaml
//
// It is a module of its own so that goreleaser stays out of the
// product's go.mod; its goreleaser version must be release.mk's
// GORELEASER_VERSION (release.mk checks).
package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/goreleaser/goreleaser/v2/pkg/config"
	"go.yaml.in/yaml/v3"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: releasecheck FILE")
		os.Exit(2)
	}
	if err := check(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "releasecheck: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	fmt.Printf("%s: valid for goreleaser's configuration (strict decoding, version 2)\n", os.Args[1])
}

func check(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var v struct {
		Version int  `yaml:"version"`
		Pro     bool `yaml:"pro"`
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		return err
	}
	if v.Version != 2 || v.Pro {
		return fmt.Errorf("version %d (pro: %v): want version: 2 for GoReleaser OSS", v.Version, v.Pro)
	}
	_, err = config.LoadReader(bytes.NewReader(data))
	return err
}
