package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
)

// ip supports "ip link add NAME type dummy" and "ip link del NAME" (through
// netlink; errors worded as iproute2's "RTNETLINK answers: Operation not
// permitted"), and "ip addr"/"ip link" listing the interfaces.
func ip(args []string) int {
	if len(args) >= 5 && args[0] == "link" && args[1] == "add" && args[3] == "type" && args[4] == "dummy" {
		if err := netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: args[2]}}); err != nil {
			fmt.Fprintf(os.Stderr, "ip: RTNETLINK answers: %v\n", strerror(err))
			return 2
		}
		return 0
	}
	if len(args) >= 3 && args[0] == "link" && (args[1] == "del" || args[1] == "delete") {
		l, err := netlink.LinkByName(args[2])
		if err == nil {
			err = netlink.LinkDel(l)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "ip: RTNETLINK answers: %v\n", strerror(err))
			return 2
		}
		return 0
	}
	if len(args) == 0 || (args[0] != "addr" && args[0] != "a" && args[0] != "link" && args[0] != "l") {
		return fail("ip", fmt.Errorf("only: ip addr, ip link, ip link add NAME type dummy, ip link del NAME"))
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return fail("ip", err)
	}
	for _, i := range ifs {
		fmt.Printf("%d: %s: <%s> mtu %d\n    link/ether %s\n", i.Index, i.Name, strings.ToUpper(strings.ReplaceAll(i.Flags.String(), "|", ",")), i.MTU, i.HardwareAddr)
		if args[0] == "addr" || args[0] == "a" {
			addrs, _ := i.Addrs()
			for _, a := range addrs {
				fam := "inet"
				if strings.Contains(a.String(), ":") {
					fam = "inet6"
				}
				fmt.Printf("    %s %s\n", fam, a)
			}
		}
	}
	return 0
}
