package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/client"
)

// StatusOptions are the inputs of status.
type StatusOptions struct {
	g      *globals
	Output string
	flags  map[string]*pflag.Flag
}

func newCmdStatus(g *globals) *cobra.Command {
	o := &StatusOptions{g: g}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "One screen for on-call: health, consumer lag per partition, clients, dead letters",
		Long: `Ask a serve instance for its status: readiness and each check, WebSocket
clients on it and on all instances, every registered instance with its
clients and partitions, the consumer group's lag per partition and the
instance that owns it (all instances together), and the dead letters
waiting, by reason. COMMITTED "none" is a partition nothing was consumed
from yet: its lag counts from where the group will start (none with
kafka.reset_offset latest, the whole partition with earliest).

An instance that stopped without a clean stop (killed, frozen, cut off) is
shown with how long it has been silent: its clients are still counted until
cluster.dead_after, and its partitions make no progress until the consumer
group gives them to another instance (kafka.session_timeout).

Exit code 1 when the instance is not ready, so scripts can use it as a probe.`,
		Example: `  signalctl status
  signalctl status --server http://signal-1.internal:8080
  signalctl status -o json | jq .consumer.totalLag`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return statusRun(cmd.Context(), o) },
	}
	addOutputFlag(cmd, &o.Output)
	o.flags = addServerFlags(cmd)
	return cmd
}

func statusRun(ctx context.Context, o *StatusOptions) error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	c, err := o.g.api(o.flags)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return fmt.Errorf("status of %s: %w", c.Base(), err)
	}
	if o.Output == FormatJSON {
		if err := writeJSON(o.g.io.Out, st); err != nil {
			return err
		}
	} else {
		printStatus(o.g.io, c.Base().String(), st)
	}
	if !st.Ready {
		return errNotReady
	}
	return nil
}

var errNotReady = fmt.Errorf("the instance is not ready")

func printStatus(io *IOStreams, server string, st client.Status) {
	w := io.Out
	state := "READY"
	color := "10"
	if !st.Ready {
		state, color = "NOT READY", "9"
	}
	fmt.Fprintf(w, "%s  %s  %s, up %s\n", styledOut(io, color, state), st.Instance, versionOr(st.Version),
		time.Since(st.StartedAt).Round(time.Second))
	fmt.Fprintf(w, "%-12s%s\n", "server", server)
	fmt.Fprintf(w, "%-12s%s\n", "checks", checksText(io, st.Checks))
	fmt.Fprintf(w, "%-12s%d here, %d on %d instance(s)\n", "clients", st.Connections.Local, st.Connections.Total, st.Instances)
	lag := fmt.Sprintf("%d", st.Consumer.TotalLag)
	if st.Consumer.TotalLag > 0 {
		lag = styledOut(io, "11", lag)
	}
	fmt.Fprintf(w, "%-12s%s → group %s, lag %s, %d partition(s) owned here\n", "consumer", st.Consumer.Topic, st.Consumer.Group, lag, st.Consumer.PartitionsOwned)
	if st.Consumer.Error != "" {
		fmt.Fprintf(w, "%-12s%s\n", "", styledOut(io, "9", st.Consumer.Error))
	}
	fmt.Fprintf(w, "%-12s%s\n", "deadletters", deadLettersText(io, st))
	printInstances(io, st)
	if len(st.Consumer.Lag) > 0 {
		fmt.Fprintln(w)
		printLag(io, st)
	}
}

// checksText is the readiness checks by name, each ok or why not.
func checksText(io *IOStreams, checks map[string]string) string {
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		v := checks[n]
		if v == "ok" {
			out = append(out, n+" "+styledOut(io, "10", "ok"))
		} else {
			out = append(out, n+" "+styledOut(io, "9", v))
		}
	}
	return strings.Join(out, ", ")
}

// deadLettersText is how many dead letters wait, by reason, and the age of
// the oldest.
func deadLettersText(io *IOStreams, st client.Status) string {
	dl := fmt.Sprintf("%d waiting", st.DeadLetters.Pending)
	if st.DeadLetters.Pending == 0 {
		return dl
	}
	var parts []string
	for r, n := range st.DeadLetters.ByReason {
		parts = append(parts, r+" "+strconv.Itoa(n))
	}
	sort.Strings(parts)
	dl = styledOut(io, "11", dl) + " (" + strings.Join(parts, ", ") + ")"
	if st.DeadLetters.Oldest != nil {
		dl += ", oldest " + time.Since(*st.DeadLetters.Oldest).Round(time.Second).String() + " ago: signalctl deadletters list"
	}
	return dl
}

// printInstances writes a line per instance: its clients and partitions.
func printInstances(io *IOStreams, st client.Status) {
	w := io.Out
	for _, in := range st.Cluster {
		name := in.ID
		if in.Self {
			name += " (this one)"
		}
		parts := make([]string, len(in.Partitions))
		for i, p := range in.Partitions {
			parts[i] = strconv.Itoa(int(p))
		}
		owns := "no partition"
		if len(parts) > 0 {
			owns = "partitions " + strings.Join(parts, ",")
		}
		fmt.Fprintf(w, "%-12s%s  %s  %d client(s), %s\n", "instance", name, in.HTTPAddr, in.Clients, owns)
		if in.Stale {
			fmt.Fprintf(w, "%-12s%s\n", "", styledOut(io, "11", in.Note))
		}
	}
}

// printLag writes the consumer's lag by partition, and who owns each.
func printLag(io *IOStreams, st client.Status) {
	rows := make([][]string, 0, len(st.Consumer.Lag))
	for _, p := range st.Consumer.Lag {
		committed := strconv.FormatInt(p.Committed, 10)
		if p.Committed < 0 {
			committed = "none" // nothing consumed from it yet
		}
		owner := p.Instance
		switch {
		case owner == "" && p.Member != "":
			owner = p.Member + " (instance not known yet)"
		case owner == "":
			owner = "unassigned"
		}
		rows = append(rows, []string{strconv.Itoa(int(p.Partition)), committed,
			strconv.FormatInt(p.End, 10), strconv.FormatInt(p.Lag, 10), owner})
	}
	printTable(io, []string{"PARTITION", "COMMITTED", "END", "LAG", "INSTANCE"}, rows)
}

func versionOr(v string) string {
	if v == "" {
		return "version unknown"
	}
	return v
}
