package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// bashShim stands in for the two functions of the bash-completion package
// that cobra's bash script calls, when that package is not loaded: without
// it, Tab printed "_get_comp_words_by_ref: command not found".
const bashShim = `# Without the bash-completion package, minimal stand-ins for the two
# functions this script uses (install bash-completion for the full ones).
if ! declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
_get_comp_words_by_ref() {
    while [[ $1 == -* ]]; do [[ $1 == -n ]] && shift; shift; done
    local v
    for v in "$@"; do
        case $v in
        cur) cur=${COMP_WORDS[COMP_CWORD]} ;;
        prev) prev=${COMP_WORDS[COMP_CWORD-1]} ;;
        words) words=("${COMP_WORDS[@]}") ;;
        cword) cword=$COMP_CWORD ;;
        esac
    done
}
fi
if ! declare -F __ltrim_colon_completions >/dev/null 2>&1; then
__ltrim_colon_completions() { :; }
fi

`

// GenBashCompletion writes the bash completion script of root: cobra's,
// working with or without the bash-completion package.
func GenBashCompletion(root *cobra.Command, w io.Writer) error {
	if _, err := io.WriteString(w, bashShim); err != nil {
		return err
	}
	return root.GenBashCompletionV2(w, true)
}

// useOwnBashCompletion makes "signalctl completion bash" print
// GenBashCompletion's script.
func useOwnBashCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		for _, sub := range c.Commands() {
			if sub.Name() == "bash" {
				sub.Long += "\n\nWithout the bash-completion package the script brings minimal stand-ins of\nits two functions; with it (apt-get install bash-completion) it uses them."
				sub.RunE = func(cmd *cobra.Command, _ []string) error { return GenBashCompletion(root, cmd.OutOrStdout()) }
				sub.Run = nil
			}
		}
	}
}
