from canarist.cli import main

main()
