package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
)

// API key scopes (contract section 9): what a key may do. A key lists its
// scopes as KEY:SCOPE+SCOPE; a key without a list has every scope, as
// every key had before scopes existed.
const (
	ScopeSend    = "send"    // broadcast, room and client sends
	ScopeNotify  = "notify"  // create, retract and update notifications
	ScopeInbox   = "inbox"   // any recipient's inbox and preferences, with recipientId
	ScopeMembers = "members" // the membership API
	ScopeStatus  = "status"  // /status, the client list, the console's operator data, dead letters
	ScopeAdmin   = "admin"   // all of them
)

// Scopes lists every scope, in the order of the contract.
var Scopes = []string{ScopeSend, ScopeNotify, ScopeInbox, ScopeMembers, ScopeStatus, ScopeAdmin}

// ScopeSet is a set of scopes.
type ScopeSet uint8

// allScopes is admin's set, and that of a key without a list.
const allScopes ScopeSet = 1<<6 - 1

func scopeBit(name string) (ScopeSet, bool) {
	for i, s := range Scopes {
		if s == name {
			if name == ScopeAdmin {
				return allScopes, true
			}
			return 1 << i, true
		}
	}
	return 0, false
}

// Allows reports whether the set holds scope (admin holds every one).
func (s ScopeSet) Allows(scope string) bool {
	b, ok := scopeBit(scope)
	return ok && s&b == b
}

// APIKeys checks API keys in constant time and knows their scopes.
type APIKeys struct {
	sums   [][32]byte
	scopes []ScopeSet
}

// ParseAPIKeys reads auth.api_keys entries: KEY (every scope) or
// KEY:SCOPE+SCOPE… (keys never contain ':'). An unknown or missing scope
// is an error naming the entry by position (never by its secret).
func ParseAPIKeys(entries []string) (*APIKeys, error) {
	k := &APIKeys{}
	for i, e := range entries {
		key, list, scoped := strings.Cut(e, ":")
		set := allScopes
		if scoped {
			set = 0
			if list == "" {
				return nil, fmt.Errorf("auth.api_keys: key %d of %d ends with ':' and no scope: list them as KEY:SCOPE+SCOPE (%s), or drop the ':' for every scope",
					i+1, len(entries), strings.Join(Scopes, ", "))
			}
			for _, name := range strings.Split(list, "+") {
				b, ok := scopeBit(strings.TrimSpace(name))
				if !ok {
					return nil, fmt.Errorf("auth.api_keys: key %d of %d names the scope %q: scopes are %s",
						i+1, len(entries), name, strings.Join(Scopes, ", "))
				}
				set |= b
			}
		}
		if key == "" {
			return nil, fmt.Errorf("auth.api_keys: key %d of %d is empty", i+1, len(entries))
		}
		k.sums = append(k.sums, sha256.Sum256([]byte(key)))
		k.scopes = append(k.scopes, set)
	}
	return k, nil
}

// NewAPIKeys is ParseAPIKeys for entries known to be valid; an entry it
// cannot read accepts nothing.
func NewAPIKeys(entries []string) *APIKeys {
	k, err := ParseAPIKeys(entries)
	if err != nil {
		return &APIKeys{}
	}
	return k
}

// KeyOf is the key of an auth.api_keys entry, without its scopes.
func KeyOf(entry string) string {
	key, _, _ := strings.Cut(entry, ":")
	return key
}

// Lookup returns the scopes of key, and false when it is not an accepted
// key. Keys are compared as SHA-256 sums so neither their content nor
// their length leaks through timing; every key is compared, whatever
// matched.
func (k *APIKeys) Lookup(key string) (ScopeSet, bool) {
	if key == "" {
		return 0, false
	}
	sum := sha256.Sum256([]byte(key))
	found, scopes := 0, 0
	for i := range k.sums {
		eq := subtle.ConstantTimeCompare(sum[:], k.sums[i][:])
		found |= eq
		scopes |= int(k.scopes[i]) & -eq // every match: a key listed twice has both lists
	}
	return ScopeSet(scopes), found == 1
}

// Valid reports whether key is one of the accepted keys, whatever its
// scopes.
func (k *APIKeys) Valid(key string) bool {
	_, ok := k.Lookup(key)
	return ok
}
