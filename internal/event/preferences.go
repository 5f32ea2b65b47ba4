package event

import (
	"fmt"
	"slices"
)

// MaxMuted bounds each list of a recipient's preferences.
const MaxMuted = 200

// Preferences say what a recipient does not want to be notified of. A
// notification is muted when its type, its organizer or its merchant is
// listed; a muted notification is neither stored nor pushed.
type Preferences struct {
	MutedTypes      []string `json:"mutedTypes"`
	MutedOrganizers []string `json:"mutedOrganizers"`
	MutedMerchants  []string `json:"mutedMerchants"`
}

// Empty reports whether nothing is muted.
func (p *Preferences) Empty() bool {
	return len(p.MutedTypes) == 0 && len(p.MutedOrganizers) == 0 && len(p.MutedMerchants) == 0
}

// Mutes reports whether a notification of this type, organizer and
// merchant (empty: none) is muted.
func (p *Preferences) Mutes(typ, organizer, merchant string) bool {
	return slices.Contains(p.MutedTypes, typ) || slices.Contains(p.MutedOrganizers, organizer) ||
		(merchant != "" && slices.Contains(p.MutedMerchants, merchant))
}

// Normalize checks every entry with the identifier rule and the MaxMuted
// bound, and sorts each list without duplicates (nil lists become empty).
func (p *Preferences) Normalize() error {
	for _, l := range []struct {
		name string
		list *[]string
	}{{"mutedTypes", &p.MutedTypes}, {"mutedOrganizers", &p.MutedOrganizers}, {"mutedMerchants", &p.MutedMerchants}} {
		if len(*l.list) > MaxMuted {
			return fmt.Errorf("%s has %d entries, the most is %d", l.name, len(*l.list), MaxMuted)
		}
		for i, v := range *l.list {
			if err := ValidateID(fmt.Sprintf("%s[%d]", l.name, i), v); err != nil {
				return err
			}
		}
		out := slices.Clone(*l.list)
		if out == nil {
			out = []string{}
		}
		slices.Sort(out)
		*l.list = slices.Compact(out)
	}
	return nil
}
