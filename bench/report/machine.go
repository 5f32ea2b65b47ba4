package report

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where the figures were measured.
type Machine struct {
	CPU        string  `json:"cpu"`
	Cores      int     `json:"cores"`
	MemoryGiB  float64 `json:"memoryGiB"`
	Kernel     string  `json:"kernel"`
	Go         string  `json:"go"`
	PostgreSQL string  `json:"postgresql"`
	Commit     string  `json:"commit"`
	// Dirty: the work tree had uncommitted changes (others' work in
	// progress is measured with the commit).
	Dirty     bool   `json:"dirty"`
	FileLimit uint64 `json:"fileLimit"`
	Disk      string `json:"disk,omitempty"`
	// Load says how busy the machine was apart from the run (the load
	// average when it started and ended).
	Load string `json:"load,omitempty"`
}

// LoadAverage is the 1-minute load average from /proc/loadavg.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Fields(string(b) + " ?")[0]
}

// DetectMachine reads /proc, uname, the Go runtime and git (read-only).
// pgVersion is the server's `SHOW server_version` when known.
func DetectMachine(pgVersion string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), PostgreSQL: pgVersion}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseFloat(strings.Fields(procField("/proc/meminfo", "MemTotal") + " 0")[0], 64); err == nil {
		m.MemoryGiB = kb / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		m.FileLimit = lim.Max
	}
	m.Commit = run("git", "rev-parse", "--short", "HEAD")
	if m.Commit != "" {
		m.Dirty = run("git", "status", "--porcelain", "--untracked-files=no") != ""
	}
	return m
}

// Markdown is the machine as a list.
func (m Machine) Markdown() string {
	var b strings.Builder
	commit := m.Commit
	if commit == "" {
		commit = "unknown"
	}
	if m.Dirty {
		commit += " with uncommitted changes in the work tree"
	}
	fmt.Fprintf(&b, "- CPU: %s, %d cores\n", orUnknown(m.CPU), m.Cores)
	fmt.Fprintf(&b, "- Memory: %.1f GiB\n", m.MemoryGiB)
	fmt.Fprintf(&b, "- Kernel: %s\n", orUnknown(m.Kernel))
	fmt.Fprintf(&b, "- Go: %s\n", orUnknown(m.Go))
	fmt.Fprintf(&b, "- PostgreSQL: %s\n", orUnknown(m.PostgreSQL))
	if m.Disk != "" {
		fmt.Fprintf(&b, "- Database storage: %s\n", m.Disk)
	}
	if m.FileLimit > 0 {
		fmt.Fprintf(&b, "- Open files limit: %s per process\n", Thousands(int64(m.FileLimit)))
	}
	if m.Load != "" {
		fmt.Fprintf(&b, "- Load: %s\n", m.Load)
	}
	fmt.Fprintf(&b, "- Commit measured: %s\n", commit)
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func run(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
