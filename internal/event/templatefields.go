package event

import (
	"fmt"
	"reflect"
	"text/template/parse"

	"github.com/signal-notify/signal/internal/suggest"
)

// checkFields finds the fields a template names that TemplateData does not
// have ({{.Actor.Nmae}}, {{.EventTyp}}): executing them fails on every
// message, so each would silently fall back to the generic template. Only
// what is known before a message arrives is checked: a chain stops at a map
// (.Data.anything is the message's own data) or a method's result.
func checkFields(t *parse.Tree) error {
	root := reflect.TypeOf(TemplateData{})
	var err error
	var walk func(n parse.Node, dot reflect.Type)
	var walkPipe func(p *parse.PipeNode, dot reflect.Type) reflect.Type
	walkPipe = func(p *parse.PipeNode, dot reflect.Type) reflect.Type {
		if p == nil {
			return nil
		}
		var last reflect.Type
		for _, c := range p.Cmds {
			last = nil
			for i, a := range c.Args {
				var typ reflect.Type
				switch a := a.(type) {
				case *parse.FieldNode:
					typ = checkChain(dot, a.Ident, a.String(), &err)
				case *parse.VariableNode:
					if a.Ident[0] == "$" {
						typ = checkChain(root, a.Ident[1:], a.String(), &err)
					}
				case *parse.ChainNode:
					var base reflect.Type
					switch b := a.Node.(type) {
					case *parse.FieldNode:
						base = checkChain(dot, b.Ident, b.String(), &err)
					case *parse.PipeNode:
						base = walkPipe(b, dot)
					}
					typ = checkChain(base, a.Field, a.String(), &err)
				case *parse.DotNode:
					typ = dot
				case *parse.PipeNode:
					walkPipe(a, dot)
				}
				if i == 0 && len(c.Args) == 1 {
					last = typ
				}
			}
		}
		return last
	}
	walk = func(n parse.Node, dot reflect.Type) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c, dot)
			}
		case *parse.ActionNode:
			walkPipe(n.Pipe, dot)
		case *parse.IfNode:
			walkPipe(n.Pipe, dot)
			walk(n.List, dot)
			walk(n.ElseList, dot)
		case *parse.WithNode:
			inner := walkPipe(n.Pipe, dot)
			walk(n.List, inner)
			walk(n.ElseList, dot)
		case *parse.RangeNode:
			over := walkPipe(n.Pipe, dot)
			var elem reflect.Type
			if over != nil && (over.Kind() == reflect.Slice || over.Kind() == reflect.Array) {
				elem = over.Elem()
			}
			walk(n.List, elem)
			walk(n.ElseList, dot)
		}
	}
	walk(t.Root, root)
	return err
}

// checkChain follows fields from typ (nil: not known) and records the first
// one that does not exist; it returns the type reached, or nil.
func checkChain(typ reflect.Type, fields []string, src string, err *error) reflect.Type {
	for _, f := range fields {
		if typ == nil || *err != nil {
			return nil
		}
		if _, ok := reflect.PointerTo(typ).MethodByName(f); ok {
			return nil // a method: what it returns is not followed
		}
		if typ.Kind() != reflect.Struct {
			return nil // a map (Data), an interface: known only with a message
		}
		sf, ok := typ.FieldByName(f)
		if !ok || !sf.IsExported() {
			var names []string
			for i := 0; i < typ.NumField(); i++ {
				if typ.Field(i).IsExported() {
					names = append(names, typ.Field(i).Name)
				}
			}
			msg := fmt.Sprintf("{{%s}}: %s has no field %s", src, typ.Name(), f)
			if typ == reflect.TypeOf(TemplateData{}) {
				msg = fmt.Sprintf("{{%s}}: the message has no field %s", src, f)
			}
			if h := suggest.Closest(f, names); h != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", h)
			}
			*err = fmt.Errorf("%s", msg)
			return nil
		}
		typ = sf.Type
	}
	return typ
}
