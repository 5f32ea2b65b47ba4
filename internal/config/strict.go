package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/signal-notify/signal/internal/suggest"
)

// NonConfigEnv are the SIGNAL_ variables that are not configuration keys
// but are read all the same (where the config file is, development state,
// tests): they draw no warning.
var NonConfigEnv = []string{
	EnvConfigFile, "SIGNAL_DEV_STATE", "SIGNAL_TEST_DATABASE_URL", "SIGNAL_TEST_LOG",
	"SIGNAL_INTEROP", "SIGNAL_CONSOLE_SCREENSHOTS",
}

// checkFileKeys refuses a config file with a key that is not one of
// Config's (a typo would otherwise be ignored silently and its default
// used): each unknown key is named with its line and the closest known key.
func checkFileKeys(path string, body []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(body, &doc); err != nil {
		return nil // viper reports malformed YAML with its own message
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	k := newKnownKeys()
	var errs []error
	k.walk(doc.Content[0], "", func(line int, key, hint string) {
		msg := fmt.Sprintf("config file %s, line %d: unknown key %s", path, line, key)
		if hint != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", hint)
		}
		errs = append(errs, errors.New(msg))
	})
	return errors.Join(errs...)
}

// knownKeys are Config's keys: leaves, the sections above them, and the
// maps (templates) with the keys their entries take.
type knownKeys struct {
	leaves   map[string]bool
	sections map[string]bool
	maps     map[string][]string // map key → keys of an entry (nil: any value)
	all      []string            // leaves and sections, for suggestions
}

func newKnownKeys() *knownKeys {
	k := &knownKeys{leaves: map[string]bool{}, sections: map[string]bool{}, maps: map[string][]string{}}
	for _, f := range Fields() {
		if f.Type == "map" {
			k.maps[f.Key] = entryKeys(f.Key)
		} else {
			k.leaves[f.Key] = true
		}
		k.all = append(k.all, f.Key)
		parts := strings.Split(f.Key, ".")
		for i := 1; i < len(parts); i++ {
			s := strings.Join(parts[:i], ".")
			if !k.sections[s] {
				k.sections[s] = true
				k.all = append(k.all, s)
			}
		}
	}
	return k
}

// entryKeys lists the mapstructure keys of the struct a map field of
// Config holds (templates.<TYPE>: content, action_url).
func entryKeys(key string) []string {
	t := reflect.TypeOf(Config{})
	for _, part := range strings.Split(key, ".") {
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).Tag.Get("mapstructure") == part {
				t = t.Field(i).Type
				break
			}
		}
	}
	if t.Kind() != reflect.Map || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < t.Elem().NumField(); i++ {
		out = append(out, t.Elem().Field(i).Tag.Get("mapstructure"))
	}
	return out
}

// walk reports every key under n (at path) that Config does not have.
// Keys are case-insensitive, as viper reads them.
func (k *knownKeys) walk(n *yaml.Node, path string, unknown func(line int, key, hint string)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyNode, val := n.Content[i], n.Content[i+1]
		key := strings.ToLower(keyNode.Value)
		full := key
		if path != "" {
			full = path + "." + key
		}
		switch {
		case k.leaves[full]:
		case k.sections[full]:
			if val.Kind == yaml.MappingNode {
				k.walk(val, full, unknown)
			}
		case k.maps[full] != nil:
			if val.Kind != yaml.MappingNode {
				continue // mapstructure reports the type
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				entry, body := val.Content[j], val.Content[j+1]
				if body.Kind != yaml.MappingNode {
					continue
				}
				for m := 0; m+1 < len(body.Content); m += 2 {
					name := strings.ToLower(body.Content[m].Value)
					if slices.Contains(k.maps[full], name) {
						continue
					}
					hint := ""
					if h := suggest.Closest(name, k.maps[full]); h != "" {
						hint = full + "." + entry.Value + "." + h
					}
					unknown(body.Content[m].Line, full+"."+entry.Value+"."+body.Content[m].Value, hint)
				}
			}
		default:
			unknown(keyNode.Line, full, suggest.Closest(full, k.all))
		}
	}
}

// UnknownEnv returns a warning for each SIGNAL_ variable of environ that
// names no configuration key (nor one of NonConfigEnv), with the closest
// one: SIGNAL_HTTP_ADRR=… would otherwise change nothing, silently.
func UnknownEnv(environ []string) []string {
	var known []string
	set := map[string]bool{}
	for _, f := range Fields() {
		if f.Env != "" {
			known = append(known, f.Env)
			set[f.Env] = true
		}
	}
	known = append(known, NonConfigEnv...)
	for _, e := range NonConfigEnv {
		set[e] = true
	}
	var out []string
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		// (Empty counts as unset, for the keys too.)
		if !strings.HasPrefix(name, "SIGNAL_") || set[name] || value == "" {
			continue
		}
		msg := name + " is set but is not a configuration variable: it changes nothing"
		if h := suggest.Closest(name, known); h != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", h)
		}
		out = append(out, msg)
	}
	sort.Strings(out)
	return out
}
