#!/usr/bin/env python3
"""Write the CSV test corpus: valid tables in the dialects the loader accepts
and hostile ones that must each give a clear error.  The outputs are
committed; rerun only to change the corpus."""
import os

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csv")
os.makedirs(here, exist_ok=True)

def write(name, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)

# valid: iris-like rows with class names, a BOM, CRLF endings, a blank line,
# spaces around cells and a quoted number
write("valid_iris.csv",
      "\ufeffsepal_length,sepal_width,petal_length,petal_width,species\r\n"
      "5.1,3.5,1.4,0.2,setosa\r\n"
      "7.0, 3.2 ,4.7,1.4,versicolor\r\n"
      "\r\n"
      "6.3,3.3,\"6.0\",2.5,virginica\r\n"
      "4.9,3.0,1.4,0.2,setosa\r\n")
# valid: no header, numeric labels (regression), exponents and signs, no final newline
write("valid_noheader.csv",
      "1,2,0.5\n"
      "-1.5e2,+3,.25\n"
      "1E-3,4.,-7")
# valid: quoted header names holding the delimiter, a doubled quote and a
# line break; label given by name ("target") in the middle
write("valid_quoted.csv",
      '"width, cm","say ""hi""",target,"two\nlines"\n'
      "1,2,b,3\n"
      "4,5,a,6\n")
# valid: semicolon-separated (use delimiter ';'), European header
write("valid_semicolon.csv", "größe;gewicht;klasse\n1.5;2;x\n2.5;3;y\n")

# hostile
write("bad_empty.csv", "")
write("bad_blank_only.csv", "\n\r\n  \n")
write("bad_header_only.csv", "a,b,label\n")
write("bad_one_column.csv", "1\n2\n3\n")
write("bad_nan.csv", "x,y,label\n1,2,0\n3,nan,1\n")
write("bad_inf.csv", "x,y,label\n1,-Infinity,0\n")
write("bad_garbage.csv",
      "sepal_length,sepal_width,petal_length,petal_width,species\n"
      "5.1,3.5,1.4,0.2,setosa\n"
      "5.0,3.4,abc,0.2,setosa\n")
write("bad_empty_cell.csv", "1,2,3\n1,,3\n")
write("bad_hex.csv", "a,b,c\n0x1A,2,3\n")
write("bad_comma_decimal.csv", 'x,y,label\n"1,5",2,0\n')
write("bad_out_of_range.csv", "1e39,2,3\n")
write("bad_ragged_short.csv", "a,b,c\n1,2,3\n4,5\n")
write("bad_ragged_long.csv", "1,2,3\n4,5,6,7\n")
write("bad_unterminated_quote.csv", 'a,b,c\n1,"2,3\n4,5,6\n')
write("bad_quote_inside.csv", '1,2"3,4\n')
write("bad_after_quote.csv", '"1"x,2,3\n')
write("bad_utf8_header.csv", b"a,\xff\xfe,label\n1,2,3\n")
write("bad_utf8_label.csv", b"a,b,label\n1,2,\xc3\x28\n")
write("bad_overlong_utf8.csv", b"a,b,label\n1,2,\xc0\xaf\n")
write("bad_nul.csv", b"1,2,3\n4,\x005,6\n")
write("bad_label_empty.csv", "a,b,label\n1,2,\n")
write("bad_binary.csv", bytes(range(256)) * 4)
