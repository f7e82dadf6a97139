# Runs every *.test file here with tcltest (each in its own tclsh); exits non-zero when a
# test fails or a test file errors.
#   EMBER_TCL_DIR=<build>/bindings/tcl tclsh bindings/tcl/tests/all.tcl [tcltest options]
package require tcltest 2.5
namespace import ::tcltest::*
configure -testdir [file dirname [file normalize [info script]]] {*}$argv
exit [runAllTests]
