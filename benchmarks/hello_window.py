"""The smallest Tk window: the yardstick the start-up benchmark builds like Parley and races it."""

import tkinter as tk

root = tk.Tk()
root.title("Hello window")
tk.Label(root, text="Hello").pack(padx=40, pady=20)
root.mainloop()
