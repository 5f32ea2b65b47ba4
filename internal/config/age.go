package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Age is a duration written as Go does (720h, 90m) or in days (90d).
type Age time.Duration

// Duration is a as a time.Duration.
func (a Age) Duration() time.Duration { return time.Duration(a) }

// ParseAge reads "90d", "36h", "0".
func ParseAge(s string) (Age, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return Age(time.Duration(days) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (90d, 720h, 0)", s)
	}
	return Age(d), nil
}

// ageHook decodes Age values from strings (files, environment, flags).
func ageHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(Age(0)) {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		return ParseAge(v)
	case int:
		if v == 0 {
			return Age(0), nil
		}
	}
	return data, nil
}
